# Problem documents (RFC 9457): the `title` of each problem type, by its slug
# (`/problems/<slug>`), and the details that are the API's own words.

problem-validation-failed = The request has invalid fields
problem-bad-request = The request is malformed
problem-unauthenticated = Authentication is required
problem-forbidden = You may not do this
problem-account-suspended = This account is suspended
problem-not-found = No such resource
problem-conflict = The request conflicts with existing data
problem-quota-exceeded = The plan's active-listing quota is used up
problem-rate-limited = Too many requests; slow down
problem-internal = Something went wrong on our side
problem-unavailable = The service is briefly unavailable; try again shortly
problem-photos-disabled = Listing photos are not available on this server
problem-storage-unavailable = The photo storage is briefly unavailable; try again shortly
problem-method-not-allowed = This method is not allowed here
problem-timeout = The request took too long
problem-payload-too-large = The request body is too large
problem-unsupported-media-type = Send JSON with Content-Type: application/json
problem-error = The request failed

detail-account-suspended = an administrator suspended this account; until it is reinstated, none of its tokens work
detail-quota-exceeded = the { $plan } plan allows { $quota } active listings; archive one, or move to a larger plan (GET /v1/plans, POST /v1/checkout)
detail-photos-disabled = this server has no photo storage configured
