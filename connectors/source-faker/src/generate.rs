//! Record generation. Each record is drawn from its own RNG seeded by (seed, stream, id), so a
//! record does not depend on how the read was batched, checkpointed or resumed.

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg32;
use serde::{Serialize, Serializer};
use sluice_sdk::{Emitter, Result, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::data::*;

/// `updated_at` of record `id` is `BASE + id` seconds: strictly increasing in emission order,
/// which makes `updated_at` a correct cursor.
const BASE: i64 = 1_717_200_000; // 2024-06-01T00:00:00Z
const USERS_CREATED_FROM: i64 = 946_684_800; // 2000-01-01
const CREATED_UNTIL: i64 = 1_704_067_200; // 2024-01-01
const PRODUCTS_CREATED_FROM: i64 = 1_420_070_400; // 2015-01-01
const PURCHASES_CREATED_FROM: i64 = 1_577_836_800; // 2020-01-01

/// There are always this many products.
pub const PRODUCT_COUNT: u64 = 100;

/// The streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Users,
    Products,
    Purchases,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Users, Kind::Products, Kind::Purchases];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Users => "users",
            Kind::Products => "products",
            Kind::Purchases => "purchases",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    fn tag(self) -> u64 {
        match self {
            Kind::Users => 1,
            Kind::Products => 2,
            Kind::Purchases => 3,
        }
    }

    /// The JSON schema of one record, as Airbyte's source-faker publishes it.
    pub fn schema(self) -> Value {
        let ts = json!({"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"});
        let nts = json!({"type": ["null", "string"], "format": "date-time", "airbyte_type": "timestamp_with_timezone"});
        let s = json!({"type": "string"});
        let i = json!({"type": "integer"});
        let properties = match self {
            Kind::Users => json!({
                "id": i, "created_at": ts, "updated_at": ts, "name": s, "title": s, "age": i,
                "email": s, "telephone": s, "gender": s, "language": s, "academic_degree": s,
                "nationality": s, "occupation": s, "height": s, "blood_type": s, "weight": i,
                "address": {"type": "object", "properties": {
                    "street_number": s, "street_name": s, "city": s, "state": s,
                    "province": s, "postal_code": s, "country_code": s
                }}
            }),
            Kind::Products => json!({
                "id": i, "make": s, "model": s, "year": i, "price": {"type": "number"},
                "created_at": ts, "updated_at": ts
            }),
            Kind::Purchases => json!({
                "id": i, "user_id": i, "product_id": i, "created_at": ts, "updated_at": ts,
                "added_to_cart_at": nts, "purchased_at": nts, "returned_at": nts
            }),
        };
        json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": properties
        })
    }
}

/// A short string built on the stack and serialized as a JSON string. Record fields are laid
/// out byte by byte instead of through `fmt`: inside the sandbox, `fmt`'s indirect calls are a
/// large share of a record's cost, and a record then needs no allocation of its own.
#[derive(Clone, Copy)]
struct Text {
    buf: [u8; 64],
    len: usize,
}

impl Text {
    fn new() -> Self {
        Text {
            buf: [0; 64],
            len: 0,
        }
    }

    fn str(mut self, s: &str) -> Self {
        let end = (self.len + s.len()).min(self.buf.len());
        self.buf[self.len..end].copy_from_slice(&s.as_bytes()[..end - self.len]);
        self.len = end;
        self
    }

    fn int(self, n: u64) -> Self {
        self.str(itoa::Buffer::new().format(n))
    }

    /// `n` in exactly `width` digits, zero-padded (high digits beyond `width` are dropped).
    fn padded(mut self, mut n: u64, width: usize) -> Self {
        let end = (self.len + width).min(self.buf.len());
        for i in (self.len..end).rev() {
            self.buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.len = end;
        self
    }

    fn as_str(&self) -> &str {
        // Only whole `&str`s and ASCII digits are ever copied in, and never cut (64 bytes is
        // more than any field here needs), so this cannot fail.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Seconds since the epoch, serialized the way Airbyte's faker writes timestamps:
/// `2001-05-23T04:29:23+00:00`. `time` does the calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub i64);

impl Timestamp {
    fn text(self) -> Text {
        let Ok(t) = OffsetDateTime::from_unix_timestamp(self.0) else {
            return Text::new();
        };
        let (year, month, day) = t.to_calendar_date();
        let (h, m, s) = t.to_hms();
        Text::new()
            .padded(year.clamp(0, 9999) as u64, 4)
            .str("-")
            .padded(month as u64, 2)
            .str("-")
            .padded(day.into(), 2)
            .str("T")
            .padded(h.into(), 2)
            .str(":")
            .padded(m.into(), 2)
            .str(":")
            .padded(s.into(), 2)
            .str("+00:00")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.text().serialize(s)
    }
}

/// A cursor value as text.
pub fn timestamp(secs: i64) -> String {
    Timestamp(secs).text().as_str().to_string()
}

/// Parse a cursor value back into seconds.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// `know2036+1@duck.com`
fn email(word: &str, year: u32, id: u64, domain: &str) -> Text {
    Text::new()
        .str(word)
        .int(year.into())
        .str("+")
        .int(id)
        .str("@")
        .str(domain)
}

/// `(698) 930-1111`, `067-835-7187` or `+1-698-930-1111`
fn telephone(style: u32, a: u32, b: u32, c: u32) -> Text {
    let (a, b, c) = (u64::from(a), u64::from(b), u64::from(c));
    match style {
        0 => Text::new()
            .str("(")
            .int(a)
            .str(") ")
            .int(b)
            .str("-")
            .padded(c, 4),
        1 => Text::new()
            .padded(a % 100, 3)
            .str("-")
            .int(b)
            .str("-")
            .padded(c, 4),
        _ => Text::new()
            .str("+1-")
            .int(a)
            .str("-")
            .int(b)
            .str("-")
            .padded(c, 4),
    }
}

fn rng(seed: u64, kind: Kind, id: u64, salt: u64) -> Pcg32 {
    let key = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(id.wrapping_mul(0xD1B5_4A32_D192_ED03))
        ^ (kind.tag() << 56)
        ^ (salt << 48);
    Pcg32::seed_from_u64(key)
}

fn pick<'a>(r: &mut Pcg32, list: &[&'a str]) -> &'a str {
    list[r.random_range(0..list.len())]
}

#[derive(Serialize)]
struct Address<'a> {
    street_number: Text,
    street_name: &'a str,
    city: &'a str,
    state: &'a str,
    province: &'a str,
    postal_code: Text,
    country_code: &'a str,
}

#[derive(Serialize)]
struct User<'a> {
    id: u64,
    created_at: Timestamp,
    updated_at: Timestamp,
    name: &'a str,
    title: &'a str,
    age: u32,
    email: Text,
    telephone: Text,
    gender: &'a str,
    language: &'a str,
    academic_degree: &'a str,
    nationality: &'a str,
    occupation: &'a str,
    height: Text,
    blood_type: &'a str,
    weight: u32,
    address: Address<'a>,
}

#[derive(Serialize)]
struct Product<'a> {
    id: u64,
    make: &'a str,
    model: &'a str,
    year: u32,
    price: f64,
    created_at: Timestamp,
    updated_at: Timestamp,
}

#[derive(Serialize)]
struct Purchase {
    id: u64,
    user_id: u64,
    product_id: u64,
    created_at: Timestamp,
    updated_at: Timestamp,
    added_to_cart_at: Option<Timestamp>,
    purchased_at: Option<Timestamp>,
    returned_at: Option<Timestamp>,
}

/// How many purchases user `user` made (0 to 3).
fn purchases_of(seed: u64, user: u64) -> u64 {
    let mut r = rng(seed, Kind::Purchases, user, 1);
    r.random_range(0..4u64)
}

/// Generates one stream in `updated_at` order, from just after a cursor.
pub struct Generator {
    kind: Kind,
    seed: u64,
    /// The next record id to emit.
    next_id: u64,
    /// The last id (inclusive).
    last_id: u64,
    /// Purchases only: the user the next purchase belongs to, and how many of that user's
    /// purchases come before `next_id`.
    user: u64,
    user_offset: u64,
    users: u64,
}

impl Generator {
    /// A generator of `kind` for `count` users, skipping records with `updated_at <= after`.
    pub fn new(kind: Kind, seed: u64, count: u64, after: Option<i64>) -> Self {
        let first = after.map_or(1, |t| (t - BASE + 1).max(1) as u64);
        let mut g = Generator {
            kind,
            seed,
            next_id: first,
            last_id: 0,
            user: 1,
            user_offset: 0,
            users: count,
        };
        match kind {
            Kind::Users => g.last_id = count,
            Kind::Products => g.last_id = PRODUCT_COUNT,
            Kind::Purchases => {
                // Walk the users to find who owns purchase `first` and how many there are.
                let mut id = 1; // first purchase id of `user`
                let mut found = false;
                for user in 1..=count {
                    let n = purchases_of(seed, user);
                    if !found && first < id + n {
                        g.user = user;
                        g.user_offset = first.saturating_sub(id);
                        found = true;
                    }
                    id += n;
                }
                g.last_id = id - 1;
                if !found {
                    g.user = count + 1;
                }
            }
        }
        g
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn is_done(&self) -> bool {
        self.next_id > self.last_id
    }

    /// Emit the next record; returns its `updated_at` seconds, or `None` when done.
    pub fn next_record(&mut self, out: &mut Emitter) -> Result<Option<i64>> {
        if self.is_done() {
            return Ok(None);
        }
        let id = self.next_id;
        let updated = BASE + id as i64;
        match self.kind {
            Kind::Users => out.record("users", &self.user(id, updated))?,
            Kind::Products => out.record("products", &self.product(id, updated))?,
            Kind::Purchases => {
                while self.user <= self.users
                    && self.user_offset >= purchases_of(self.seed, self.user)
                {
                    self.user += 1;
                    self.user_offset = 0;
                }
                let p = self.purchase(id, self.user, self.user_offset, updated);
                self.user_offset += 1;
                out.record("purchases", &p)?;
            }
        }
        self.next_id += 1;
        Ok(Some(updated))
    }

    fn user(&self, id: u64, updated: i64) -> User<'static> {
        let mut r = rng(self.seed, Kind::Users, id, 0);
        let name = pick(&mut r, FIRST_NAMES);
        let created = r.random_range(USERS_CREATED_FROM..CREATED_UNTIL);
        let email = email(
            pick(&mut r, EMAIL_WORDS),
            r.random_range(1900..2100u32),
            id,
            pick(&mut r, EMAIL_DOMAINS),
        );
        let (a, b, c) = (
            r.random_range(200..1000u32),
            r.random_range(100..1000u32),
            r.random_range(0..10000u32),
        );
        let telephone = telephone(r.random_range(0..3u32), a, b, c);
        User {
            id,
            created_at: Timestamp(created),
            updated_at: Timestamp(updated),
            name,
            title: pick(&mut r, TITLES),
            age: r.random_range(18..90),
            email,
            telephone,
            gender: pick(&mut r, GENDERS),
            language: pick(&mut r, LANGUAGES),
            academic_degree: pick(&mut r, ACADEMIC_DEGREES),
            nationality: pick(&mut r, NATIONALITIES),
            occupation: pick(&mut r, OCCUPATIONS),
            height: Text::new()
                .str("1.")
                .padded(r.random_range(45..100u32).into(), 2),
            blood_type: pick(&mut r, BLOOD_TYPES),
            weight: r.random_range(40..130),
            address: Address {
                street_number: Text::new().int(r.random_range(1..2000u32).into()),
                street_name: pick(&mut r, STREET_NAMES),
                city: pick(&mut r, CITIES),
                state: pick(&mut r, STATES),
                province: pick(&mut r, STATES),
                postal_code: Text::new().padded(r.random_range(501..99951u32).into(), 5),
                country_code: pick(&mut r, COUNTRY_CODES),
            },
        }
    }

    fn product(&self, id: u64, updated: i64) -> Product<'static> {
        let mut r = rng(self.seed, Kind::Products, id, 0);
        let (make, models) = MAKES[r.random_range(0..MAKES.len())];
        Product {
            id,
            make,
            model: pick(&mut r, models),
            year: r.random_range(1990..2025),
            price: f64::from(r.random_range(5_000..90_000u32)) + 0.99,
            created_at: Timestamp(r.random_range(PRODUCTS_CREATED_FROM..CREATED_UNTIL)),
            updated_at: Timestamp(updated),
        }
    }

    fn purchase(&self, id: u64, user: u64, nth: u64, updated: i64) -> Purchase {
        let mut r = rng(self.seed, Kind::Purchases, user, 2 + nth);
        let created = r.random_range(PURCHASES_CREATED_FROM..CREATED_UNTIL);
        let added = created + r.random_range(0..86_400);
        let purchased = r
            .random_bool(0.8)
            .then(|| added + r.random_range(60..604_800));
        let returned = purchased
            .filter(|_| r.random_bool(0.1))
            .map(|p| p + r.random_range(86_400..2_592_000));
        Purchase {
            id,
            user_id: user,
            product_id: r.random_range(1..=PRODUCT_COUNT),
            created_at: Timestamp(created),
            updated_at: Timestamp(updated),
            added_to_cart_at: Some(Timestamp(added)),
            purchased_at: purchased.map(Timestamp),
            returned_at: returned.map(Timestamp),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::{Message, Reader};

    struct One(Generator);
    impl Reader for One {
        fn read(&mut self, out: &mut Emitter) -> Result<bool> {
            while self.0.next_record(out)?.is_some() {}
            Ok(false)
        }
    }

    fn all(kind: Kind, seed: u64, count: u64, after: Option<i64>) -> Vec<Value> {
        let mut d = sluice_sdk::ReaderDriver::new(One(Generator::new(kind, seed, count, after)));
        let mut out = Vec::new();
        while let Some(Message::Batch { records, .. }) = d.next(1_000_000).unwrap() {
            for line in records.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                out.push(serde_json::from_slice(line).unwrap());
            }
        }
        out
    }

    #[test]
    fn timestamps_look_like_airbyte_and_parse_back() {
        for secs in [0, 946_684_800, BASE + 1, 1_704_067_199, 4_102_444_800] {
            let text = timestamp(secs);
            assert_eq!(text.len(), 25, "{text}");
            assert!(text.ends_with("+00:00"));
            assert_eq!(parse_timestamp(&text), Some(secs), "{text}");
        }
        assert_eq!(timestamp(BASE + 1), "2024-06-01T00:00:01+00:00");
    }

    #[test]
    fn users_have_airbyte_fields_in_order() {
        let users = all(Kind::Users, 7, 3, None);
        assert_eq!(users.len(), 3);
        let keys: Vec<&str> = users[0]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        let mut expected = vec![
            "id",
            "created_at",
            "updated_at",
            "name",
            "title",
            "age",
            "email",
            "telephone",
            "gender",
            "language",
            "academic_degree",
            "nationality",
            "occupation",
            "height",
            "blood_type",
            "weight",
            "address",
        ];
        let mut sorted = keys.clone();
        sorted.sort();
        expected.sort();
        assert_eq!(sorted, expected);
        assert_eq!(users[2]["id"], 3);
        assert!(users[0]["address"]["country_code"].is_string());
    }

    #[test]
    fn same_seed_same_records_other_seed_other_records() {
        assert_eq!(all(Kind::Users, 1, 50, None), all(Kind::Users, 1, 50, None));
        assert_ne!(all(Kind::Users, 1, 50, None), all(Kind::Users, 2, 50, None));
    }

    #[test]
    fn a_cursor_resumes_exactly_after_it() {
        for kind in Kind::ALL {
            let full = all(kind, 3, 40, None);
            let cut = &full[9]["updated_at"];
            let after = parse_timestamp(cut.as_str().unwrap());
            let rest = all(kind, 3, 40, after);
            assert_eq!(rest, full[10..], "{kind:?}");
        }
    }

    #[test]
    fn a_future_cursor_returns_nothing() {
        for kind in Kind::ALL {
            assert!(all(kind, 3, 40, Some(BASE + 10_000_000)).is_empty());
        }
    }

    #[test]
    fn purchases_belong_to_existing_users_and_products() {
        let p = all(Kind::Purchases, 5, 100, None);
        assert!(!p.is_empty());
        for (i, rec) in p.iter().enumerate() {
            assert_eq!(rec["id"], i as u64 + 1);
            let u = rec["user_id"].as_u64().unwrap();
            assert!((1..=100).contains(&u));
            let pr = rec["product_id"].as_u64().unwrap();
            assert!((1..=PRODUCT_COUNT).contains(&pr));
        }
    }
}
