-- HMAC-SHA-256 (RFC 2104) of a text under a key given as its inner and outer pads
-- (key XOR 0x36 / 0x5c, 64 bytes): sha256(outer || sha256(inner || message)). Lowercase hex.
CREATE OR REPLACE MACRO s19_hmac_sha256(inner_pad, outer_pad, message) AS
    sha256(outer_pad::BLOB || unhex(sha256(inner_pad::BLOB || encode(message))));
