"""A labelled set for the PII detectors, made by Faker (a library the detectors' authors did not
write): values of each entity in ten locales, bare in a field named for them and inside a
sentence, and look-alikes that are not personal data. One JSON object per line:

  {"entity": "phone", "locale": "de_DE", "field": "phone", "value": "+49 (0) 9141 777631",
   "pii": "+49 (0) 9141 777631"}

`entity` is null for a look-alike (then `kind` says what it is). Usage: labelled.py OUT N SEED
(N values per entity and locale, half bare, half in a sentence)."""

import json
import random
import sys

from faker import Faker

OUT, N, SEED = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_BR", "ja_JP", "en_IN"]
rng = random.Random(SEED)

# Sentences a person writes around a value, by entity; the value replaces {}.
SENTENCES = {
    "email": ["Write to {} for details.", "contact: {}", "Sent by {} on Monday"],
    "phone": ["Call me on {} after six.", "tel. {}", "Please phone {} to confirm.",
              "mobile: {}", "You can reach the office at {}."],
    "ipv4": ["Login from {} was blocked.", "client={} status=200"],
    "ipv6": ["Login from {} was blocked.", "client={} status=200"],
    "card": ["Paid with card {} yesterday.", "card number: {}"],
    "iban": ["Transfer to IBAN {} please.", "IBAN: {}"],
    "ssn": ["SSN {} on file.", "social security number: {}"],
}
FIELDS = {"email": "email", "phone": "phone", "ipv4": "ip_address", "ipv6": "ip_address",
          "card": "card_number", "iban": "iban", "ssn": "ssn"}
CARDS = ["visa16", "visa13", "visa19", "mastercard", "amex", "discover", "diners", "jcb15",
         "jcb16", "maestro"]


def value(f, entity):
    if entity == "email":
        return f.email()
    if entity == "phone":
        return f.phone_number()
    if entity == "ipv4":
        return f.ipv4()
    if entity == "ipv6":
        return f.ipv6()
    if entity == "card":
        return f.credit_card_number(card_type=rng.choice(CARDS))
    if entity == "iban":
        return f.iban()
    if entity == "ssn":
        return Faker("en_US").ssn()
    raise ValueError(entity)


def lookalikes(f):
    """Values that are not personal data but share its shapes."""
    return [
        ("uuid", "id", f.uuid4()),
        ("timestamp", "created_at", f.iso8601()),
        ("date", "note", f"Shipped on {f.date()} at {f.time()}."),
        ("version", "version", f"{rng.randint(0, 20)}.{rng.randint(0, 99)}.{rng.randint(0, 999)}"),
        ("order_id", "order_id", f.numerify("ORD-##########")),
        ("sku", "sku", f.bothify("??-####-####").upper()),
        ("isbn13", "isbn", f.isbn13()),
        ("price", "note", f"Total {f.pricetag()} incl. VAT"),
        ("postcode", "postcode", f.postcode()),
        ("coordinates", "location", f"{f.latitude()}, {f.longitude()}"),
        ("mac", "device", f.mac_address()),
        ("color", "color", f.hex_color()),
        ("sentence", "bio", f.sentence(nb_words=12)),
        ("address", "address", f.address().replace("\n", ", ")),
        ("name", "name", f.name()),
        ("quantity", "note", f"{rng.randint(2, 99)} x {rng.randint(100, 9999)} units, batch {rng.randint(10000, 99999)}"),
        ("hash", "checksum", f.sha1()),
    ]


with open(OUT, "w", encoding="utf-8") as out:
    for locale in LOCALES:
        f = Faker(locale)
        f.seed_instance(SEED + LOCALES.index(locale))
        for entity in SENTENCES:
            for i in range(N):
                v = value(f, entity)
                if i % 2 == 0:
                    field, text = FIELDS[entity], v
                else:
                    field, text = "note", rng.choice(SENTENCES[entity]).format(v)
                out.write(json.dumps({"entity": entity, "locale": locale, "field": field,
                                      "value": text, "pii": v}, ensure_ascii=False) + "\n")
        for i in range(N // 4):
            for kind, field, text in lookalikes(f):
                out.write(json.dumps({"entity": None, "kind": kind, "locale": locale,
                                      "field": field, "value": text}, ensure_ascii=False) + "\n")
