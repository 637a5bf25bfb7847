-- V2: property listings and their photos, with the indexes the search endpoint uses.

-- Each migration runs in its own transaction (goodgo db migrate); bound how long it may
-- wait for locks and run, so a busy table fails the deploy instead of stalling it.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';

CREATE TYPE listing_status AS ENUM ('draft', 'active', 'sold', 'archived');
CREATE TYPE listing_type AS ENUM ('sale', 'rent');
CREATE TYPE property_type AS ENUM ('apartment', 'house', 'villa', 'townhouse', 'land', 'office', 'shop');

CREATE TABLE listings (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id      bigint         NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title         text           NOT NULL CHECK (length(title) BETWEEN 3 AND 200),
    description   text           NOT NULL DEFAULT '' CHECK (length(description) <= 10000),
    price         numeric(14, 2) NOT NULL CHECK (price > 0),
    currency      text           NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    listing_type  listing_type   NOT NULL,
    property_type property_type  NOT NULL,
    bedrooms      smallint       NOT NULL DEFAULT 0 CHECK (bedrooms BETWEEN 0 AND 50),
    bathrooms     smallint       NOT NULL DEFAULT 0 CHECK (bathrooms BETWEEN 0 AND 50),
    area_m2       numeric(10, 2) NOT NULL CHECK (area_m2 > 0),
    address       text           NOT NULL DEFAULT '' CHECK (length(address) <= 300),
    city          text           NOT NULL CHECK (length(city) BETWEEN 1 AND 100),
    district      text           NOT NULL DEFAULT '' CHECK (length(district) <= 100),
    latitude      double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude     double precision CHECK (longitude BETWEEN -180 AND 180),
    status        listing_status NOT NULL DEFAULT 'draft',
    search        tsvector GENERATED ALWAYS AS (
                      setweight(to_tsvector('simple', title), 'A')
                      || setweight(to_tsvector('simple', description), 'B')
                  ) STORED,
    created_at    timestamptz    NOT NULL DEFAULT now(),
    updated_at    timestamptz    NOT NULL DEFAULT now(),
    published_at  timestamptz,
    CHECK ((latitude IS NULL) = (longitude IS NULL)),
    -- Every listing that was ever published knows when; a draft archived unpublished does not.
    CHECK (status IN ('draft', 'archived') OR published_at IS NOT NULL)
);

-- Search, newest first, optionally by city:
--   SELECT ... FROM listings WHERE status = 'active' [AND city = $1] [AND bedrooms >= $2]
--   [AND price BETWEEN $3 AND $4] ORDER BY published_at DESC, id DESC LIMIT $5
-- (keyset pagination continues with AND (published_at, id) < ($6, $7)).
CREATE INDEX listings_active_city_recent_idx ON listings (city, published_at DESC, id DESC)
    WHERE status = 'active';
CREATE INDEX listings_active_recent_idx ON listings (published_at DESC, id DESC)
    WHERE status = 'active';

-- Search sorted by price, or filtered by a price range without a city:
--   SELECT ... WHERE status = 'active' AND price BETWEEN $1 AND $2 ORDER BY price, id LIMIT $3
CREATE INDEX listings_active_price_idx ON listings (price, id) WHERE status = 'active';

-- Full-text search over title (weight A) and description (weight B):
--   SELECT ... WHERE status = 'active' AND search @@ websearch_to_tsquery('simple', $1)
--   ORDER BY ts_rank(search, websearch_to_tsquery('simple', $1)) DESC, id DESC
CREATE INDEX listings_active_search_idx ON listings USING gin (search) WHERE status = 'active';

-- "My listings": SELECT ... FROM listings WHERE owner_id = $1 ORDER BY created_at DESC, id DESC.
CREATE INDEX listings_owner_idx ON listings (owner_id, created_at DESC, id DESC);

CREATE TABLE listing_photos (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    listing_id  bigint      NOT NULL REFERENCES listings (id) ON DELETE CASCADE,
    object_key  text        NOT NULL CHECK (length(object_key) BETWEEN 1 AND 1024),
    position    smallint    NOT NULL DEFAULT 0 CHECK (position >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (listing_id, position)
);

-- Object keys are unique across the bucket: SELECT ... FROM listing_photos WHERE object_key = $1.
CREATE UNIQUE INDEX listing_photos_object_key ON listing_photos (object_key);
