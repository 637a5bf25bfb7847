-- V9: listing photos on private S3-compatible storage (TEC-1452).
--
-- A photo starts `pending` when the API hands out a presigned PUT URL for its random key,
-- and becomes `ready` (with its size, content type and place in the listing's order) when
-- the owner confirms the upload and a HEAD of the object agrees. Reads are presigned GET
-- URLs of ready photos.
--
-- Whatever removes a photo's row (deleting the photo, its listing, or the listing's owner,
-- through the cascades) writes the deletion of its object to the outbox (V8, topic
-- `photo.delete`) in the same transaction; the API's outbox worker deletes the objects,
-- retrying while the storage is unreachable. So no object is forgotten, and a storage
-- outage delays deletions instead of losing them.

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';

CREATE TYPE photo_status AS ENUM ('pending', 'ready');

-- A pending photo has no place in the order yet (NULLs do not collide in the
-- UNIQUE (listing_id, position) constraint of V2). No earlier release of the API reads
-- listing_photos (photos arrive with this migration), so relaxing the column breaks no
-- client serving while it runs.
-- squawk-ignore ban-drop-not-null
ALTER TABLE listing_photos ALTER COLUMN position DROP NOT NULL;
-- squawk-ignore ban-drop-default
ALTER TABLE listing_photos ALTER COLUMN position DROP DEFAULT;
ALTER TABLE listing_photos
    ADD COLUMN status       photo_status NOT NULL DEFAULT 'ready',
    ADD COLUMN content_type text CHECK (length(content_type) <= 100),
    ADD COLUMN size_bytes   bigint CHECK (size_bytes >= 0),
    ADD COLUMN confirmed_at timestamptz;
-- The key and the check below are verified by one read of listing_photos, under the lock
-- the ALTER TABLE above already holds; the table was unused before this migration, and the
-- new column is NULL in every row, so neither can take long or find a violation.
-- squawk-ignore adding-foreign-key-constraint
ALTER TABLE listing_photos ADD COLUMN uploaded_by bigint REFERENCES users (id) ON DELETE SET NULL;
-- squawk-ignore constraint-missing-not-valid
ALTER TABLE listing_photos ADD CONSTRAINT listing_photos_ready_is_placed CHECK (status = 'pending' OR position IS NOT NULL);
ALTER TABLE listing_photos ALTER COLUMN status SET DEFAULT 'pending';

-- A listing's photos in order: SELECT ... WHERE listing_id = $1 AND status = 'ready'
-- ORDER BY position (the UNIQUE (listing_id, position) index of V2 serves it).

CREATE FUNCTION enqueue_photo_deletion() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (topic, key, payload)
    VALUES ('photo.delete', gen_random_uuid(), jsonb_build_object('key', OLD.object_key));
    RETURN OLD;
END;
$$;

CREATE TRIGGER listing_photos_enqueue_deletion
    AFTER DELETE ON listing_photos
    FOR EACH ROW EXECUTE FUNCTION enqueue_photo_deletion();
