# Notifications: what GET /v1/me/notifications shows and what the e-mail says, one subject
# and one body per kind (the kind with `.` written as `-`).

email-greeting = Hello { $name },
email-footer =
    —
    GoodGo · Hanoi · Ho Chi Minh City
    You can turn these e-mails off in your notification settings.

welcome-subject = Welcome to GoodGo
welcome-body = Your GoodGo account for { $email } is ready. Browse listings in Hanoi and Ho Chi Minh City, or publish your own.

listing-published-subject = Your listing is live: { $title }
listing-published-body = Your listing "{ $title }" (#{ $listing_id }) is published and appears in search.

listing-unpublished-subject = Your listing was unpublished: { $title }
listing-unpublished-body = A moderator took your listing "{ $title }" (#{ $listing_id }) out of search and back to draft. Reason: { $reason }. Edit it and publish it again when it is ready.

payment-receipt-subject = Receipt for your { $plan } plan
payment-receipt-body = We received your payment of { $amount } { $currency } for the { $plan } plan (reference { $reference }). Thank you.

subscription-ended-subject = Your { $plan } subscription has ended
subscription-ended-body = Your { $plan } subscription has ended; the free plan applies now. Listings beyond its quota were moved back to draft ({ $unpublished } of them).
