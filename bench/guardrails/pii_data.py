"""Labelled English texts containing PII, for benchmarking PII detectors.

The PII benchmark compares basalt's detectors with a peer (Presidio) on the
same texts. This module makes those texts: a seeded, deterministic generator
written for this project (no third-party data set), covering all 31 PII entity
types Amazon Bedrock Guardrails defines.

    generate(seed=7, per_type=20) -> list[dict]
        `per_type` texts for each Bedrock type, each
        {"text": str, "entities": [{"type", "start", "end"}], "primary": type}
        where `text[start:end]` is the inserted value (character offsets, end
        exclusive). Every PII value in a text is labelled, so a detection that
        matches no label is a false positive. Some templates hold a second
        entity of another type (a name and an email, a card with its expiry).
    negatives(seed=7, n=100) -> list[dict]
        Texts with no PII at all (entities == []): 16-digit numbers that fail
        Luhn, order numbers, dates, prices, version numbers, quantities,
        product codes, years, times, ordinary and Title Case sentences. Each
        has a "category" key saying which kind of trap it is.

Values are realistic and *valid* where the identifier has a rule: card
numbers pass Luhn with real issuer prefixes, IBANs carry correct mod-97 check
digits (and the national check digits for FR, ES and NL), ABA routing numbers,
NHS numbers, SINs, VINs, UTRs and Canadian health numbers carry correct check
digits, SSNs/ITINs/NINOs respect the issuing rules.

Span conventions follow Bedrock's entity descriptions: AGE includes its unit
when the text gives one ("I'm 34 years old" -> "34 years"), NAME excludes
titles ("Dr. " is outside the span), ADDRESS spans the whole address.
Every text is ASCII, so character offsets equal byte offsets (basalt reports
byte offsets).

Run `python pii_data.py` to print counts and samples and to self-check every
label and checksum.
"""

from __future__ import annotations

import random
import re
import string
from typing import Callable

# Bedrock's 31 PII entity types, in Bedrock's order.
BEDROCK_TYPES = [
    "ADDRESS",
    "AGE",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "CA_HEALTH_NUMBER",
    "CA_SOCIAL_INSURANCE_NUMBER",
    "CREDIT_DEBIT_CARD_CVV",
    "CREDIT_DEBIT_CARD_EXPIRY",
    "CREDIT_DEBIT_CARD_NUMBER",
    "DRIVER_ID",
    "EMAIL",
    "INTERNATIONAL_BANK_ACCOUNT_NUMBER",
    "IP_ADDRESS",
    "LICENSE_PLATE",
    "MAC_ADDRESS",
    "NAME",
    "PASSWORD",
    "PHONE",
    "PIN",
    "SWIFT_CODE",
    "UK_NATIONAL_HEALTH_SERVICE_NUMBER",
    "UK_NATIONAL_INSURANCE_NUMBER",
    "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER",
    "URL",
    "USERNAME",
    "US_BANK_ACCOUNT_NUMBER",
    "US_BANK_ROUTING_NUMBER",
    "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER",
    "US_PASSPORT_NUMBER",
    "US_SOCIAL_SECURITY_NUMBER",
    "VEHICLE_IDENTIFICATION_NUMBER",
]

# ---------------------------------------------------------------------------
# Word lists (written for this module; ASCII spellings of names of many origins)
# ---------------------------------------------------------------------------

FIRST_NAMES = [
    "Amara", "Sofia", "Liam", "Mateo", "Aisha", "Hiroshi", "Priya", "Olumide",
    "Chen", "Fatima", "Noah", "Ingrid", "Dmitri", "Lucia", "Kwame", "Mei",
    "Arjun", "Zainab", "Emeka", "Yuki", "Santiago", "Leila", "Oskar", "Anika",
    "Tariq", "Elena", "Jamal", "Freya", "Rahul", "Camila", "Kenji", "Nadia",
    "Ethan", "Siobhan", "Mohammed", "Isabella", "Tomasz", "Ayesha", "Diego",
    "Hana", "Gabriel", "Chiara", "Kofi", "Astrid", "Vikram", "Mariana", "Jin",
    "Esther", "Malik", "Olivia", "Bogdan", "Thandiwe", "Rafael", "Saoirse",
    "Hamid", "Emily", "Luca", "Nkechi", "Andrei", "Daniela", "Sipho", "Wei",
    "Layla", "Jonas", "Ravi", "Beatriz", "Farah", "Connor", "Yasmin", "Pedro",
    "Keiko", "Samuel", "Aaliyah", "Henrik", "Marisol", "Tunde", "Anjali",
    "Callum", "Zara", "Nikolai", "Min-jun", "Ines", "Abebe", "Svetlana",
]

LAST_NAMES = [
    "Okafor", "Nakamura", "Fernandez", "Kowalski", "Haddad", "Lindqvist",
    "Patel", "Nguyen", "O'Brien", "Mensah", "Schmidt", "Rossi", "Ivanova",
    "Kim", "Hernandez", "Adeyemi", "Johansson", "Chatterjee", "Dubois",
    "MacLeod", "Yilmaz", "Takahashi", "Novak", "Abdullah", "Silva", "Murphy",
    "Zhang", "Osei", "Petrov", "Moreau", "Khan", "Garcia", "Eriksen", "Mwangi",
    "Tanaka", "Bianchi", "Horvath", "Rahman", "Costa", "Walsh", "Liu",
    "Adebayo", "Jensen", "Kaur", "Wojcik", "Sato", "Delgado", "Fischer",
    "Banerjee", "Nwosu", "Andersson", "Castillo", "Gallagher", "Huang", "Ali",
    "Romero", "Kuznetsov", "Park", "Lefebvre", "Ochieng", "Virtanen",
    "Papadopoulos", "Dlamini", "Reyes", "van der Berg", "Oyelaran", "Sharma",
    "Bergstrom", "Cohen", "Yamamoto", "Mendoza", "Nowak", "Thompson",
    "Ferreira", "Akhtar", "Lopez", "Weber", "Chowdhury", "Hughes", "Sorensen",
    "Kariuki", "Tran", "Bello",
]

EMAIL_DOMAINS = [
    "gmail.com", "outlook.com", "yahoo.com", "proton.me", "icloud.com",
    "hotmail.co.uk", "brightwave.io", "harborview.org", "kestrel-labs.co.uk",
    "fernhill.net", "mapleridge.ca", "northwind-logistics.com", "quillon.dev",
    "solace-health.org", "tidewater.edu",
]

WEB_HOSTS = [
    "www.harborview.org", "docs.quillon.dev", "shop.brightwave.io",
    "portal.solace-health.org", "www.fernhill.net", "app.northwind-logistics.com",
    "blog.kestrel-labs.co.uk", "drive.mapleridge.ca", "status.tidewater.edu",
    "www.cobaltridge.com", "files.orchardlane.co", "wiki.lumenpath.net",
]

URL_PATHS = [
    "careers", "account/settings", "orders/track", "docs/getting-started",
    "share/q3-roadmap", "support/ticket", "blog/2024/winter-update",
    "files/invoice.pdf", "reset-password", "events/open-day", "api/v2/status",
    "products/standing-desk",
]

STREET_NAMES = [
    "Maple", "Oak", "Cedar", "Lakeview", "Hillcrest", "Willow", "Riverside",
    "Sunset", "Highland", "Pine", "Elm", "Chestnut", "Meadow", "Harbor",
    "Orchard", "Birch", "Station", "Mill", "Church", "Park", "Quarry",
    "Foxglove", "Beacon", "Juniper",
]
STREET_SUFFIXES = [
    "Street", "Avenue", "Road", "Lane", "Drive", "Boulevard", "Court", "Way",
    "Place", "Terrace",
]
US_CITIES = [
    ("Portland", "OR", "972"), ("Austin", "TX", "787"), ("Columbus", "OH", "432"),
    ("Denver", "CO", "802"), ("Raleigh", "NC", "276"), ("Madison", "WI", "537"),
    ("Tucson", "AZ", "857"), ("Boise", "ID", "837"), ("Albany", "NY", "122"),
    ("Savannah", "GA", "314"), ("Burlington", "VT", "054"), ("Omaha", "NE", "681"),
]
UK_CITIES = [
    ("Leeds", "LS"), ("Bristol", "BS"), ("Manchester", "M"), ("Glasgow", "G"),
    ("Cardiff", "CF"), ("Norwich", "NR"), ("York", "YO"), ("Brighton", "BN"),
]
CA_CITIES = [
    ("Toronto", "ON", "M"), ("Vancouver", "BC", "V"), ("Calgary", "AB", "T"),
    ("Halifax", "NS", "B"), ("Ottawa", "ON", "K"), ("Winnipeg", "MB", "R"),
]

US_AREA_CODES = [
    "212", "312", "415", "617", "206", "512", "303", "404", "713", "305",
    "702", "615", "503", "214", "602", "919", "646", "718", "510", "408",
]

USERNAME_WORDS = [
    "river", "fox", "pixel", "maple", "nova", "otter", "quartz", "ember",
    "tundra", "falcon", "lotus", "cinder", "echo", "juniper", "comet", "basil",
]
PASSWORD_WORDS = [
    "Sunflower", "Blueberry", "Kangaroo", "Marble", "Thunder", "Galaxy",
    "Pumpkin", "Harbor", "Velvet", "Cactus", "Lantern", "Meadow",
]

# (bank code, country, usual location code) for SWIFT/BIC codes.
SWIFT_BANKS = [
    ("DEUT", "DE", "FF"), ("BARC", "GB", "22"), ("CHAS", "US", "33"),
    ("BNPA", "FR", "PP"), ("HSBC", "HK", "HH"), ("CITI", "US", "33"),
    ("BOFA", "US", "3N"), ("NWBK", "GB", "2L"), ("INGB", "NL", "2A"),
    ("RABO", "NL", "2U"), ("SOGE", "FR", "PP"), ("COBA", "DE", "FF"),
    ("UBSW", "CH", "ZH"), ("BBVA", "ES", "MM"), ("CAIX", "ES", "BB"),
    ("LOYD", "GB", "2L"), ("TDOM", "CA", "TT"), ("ROYC", "CA", "T2"),
    ("ANZB", "AU", "3M"), ("DBSS", "SG", "SG"),
]

# Real VIN world-manufacturer identifiers (public prefixes, not personal data).
VIN_WMIS = [
    "1HG", "1FA", "1G1", "2T1", "3VW", "4T1", "5YJ", "JHM", "JN1", "KMH",
    "WBA", "WVW", "WDD", "YV1", "SAL", "ZFA", "VF1", "KNA",
]

# ---------------------------------------------------------------------------
# Checksums
# ---------------------------------------------------------------------------


def luhn_ok(digits: str) -> bool:
    """True when the digit string passes the Luhn (mod 10) check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def luhn_complete(payload: str) -> str:
    """Append the Luhn check digit to `payload`."""
    for d in "0123456789":
        if luhn_ok(payload + d):
            return payload + d
    raise AssertionError("unreachable")


def iban_ok(iban: str) -> bool:
    """True when the IBAN (spaces allowed) passes ISO 13616 mod-97."""
    s = iban.replace(" ", "")
    rearranged = s[4:] + s[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


def iban_complete(country: str, bban: str) -> str:
    """Build an IBAN (compact) from a country code and BBAN."""
    rearranged = bban + country + "00"
    number = "".join(str(int(c, 36)) for c in rearranged)
    check = 98 - int(number) % 97
    return f"{country}{check:02d}{bban}"


def aba_ok(digits: str) -> bool:
    """True when a 9-digit ABA routing number has a valid checksum."""
    d = [int(c) for c in digits]
    return (3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8])) % 10 == 0


def nhs_ok(digits: str) -> bool:
    """True when a 10-digit NHS number has a valid mod-11 check digit."""
    d = [int(c) for c in digits]
    check = 11 - sum(d[i] * (10 - i) for i in range(9)) % 11
    if check == 11:
        check = 0
    return check != 10 and check == d[9]


_VIN_VALUES = {
    **{str(i): i for i in range(10)},
    "A": 1, "B": 2, "C": 3, "D": 4, "E": 5, "F": 6, "G": 7, "H": 8,
    "J": 1, "K": 2, "L": 3, "M": 4, "N": 5, "P": 7, "R": 9,
    "S": 2, "T": 3, "U": 4, "V": 5, "W": 6, "X": 7, "Y": 8, "Z": 9,
}
_VIN_WEIGHTS = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]
VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"  # no I, O, Q


def vin_check_char(vin: str) -> str:
    """The check character (position 9) a 17-character VIN should carry."""
    total = sum(_VIN_VALUES[c] * w for c, w in zip(vin, _VIN_WEIGHTS))
    r = total % 11
    return "X" if r == 10 else str(r)


def vin_ok(vin: str) -> bool:
    return len(vin) == 17 and all(c in VIN_CHARS for c in vin) and vin[8] == vin_check_char(vin)


_UTR_CHECK = "21987654321"  # HMRC: remainder of the weighted sum -> check digit


def utr_ok(digits: str) -> bool:
    """True when a 10-digit UTR's leading check digit is right."""
    weights = [6, 7, 8, 9, 10, 5, 4, 3, 2]
    r = sum(int(c) * w for c, w in zip(digits[1:], weights)) % 11
    return digits[0] == _UTR_CHECK[r]


def bc_phn_ok(digits: str) -> bool:
    """True when a British Columbia PHN (10 digits, leading 9) checks out."""
    weights = [2, 4, 8, 5, 10, 9, 7, 3]
    r = sum(int(c) * w for c, w in zip(digits[1:9], weights)) % 11
    check = 11 - r
    return digits[0] == "9" and check < 10 and int(digits[9]) == check


def ssn_ok(s: str) -> bool:
    d = re.sub(r"\D", "", s)
    area, group, serial = d[:3], d[3:5], d[5:]
    return (
        len(d) == 9 and area not in ("000", "666") and area[0] != "9"
        and group != "00" and serial != "0000"
    )


ITIN_GROUPS = [g for g in range(50, 100) if g not in range(66, 70) and g != 89 and g != 93]


def itin_ok(s: str) -> bool:
    d = re.sub(r"\D", "", s)
    return len(d) == 9 and d[0] == "9" and int(d[3:5]) in ITIN_GROUPS


NINO_FIRST = [c for c in string.ascii_uppercase if c not in "DFIQUV"]
NINO_SECOND = [c for c in string.ascii_uppercase if c not in "DFIOQUV"]
NINO_BAD_PREFIXES = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}


def nino_ok(s: str) -> bool:
    c = s.replace(" ", "")
    return (
        len(c) == 9 and c[0] in NINO_FIRST and c[1] in NINO_SECOND
        and c[:2] not in NINO_BAD_PREFIXES and c[2:8].isdigit() and c[8] in "ABCD"
    )


# ---------------------------------------------------------------------------
# Value generators: one per Bedrock type, each (rng, variant) -> str.
# `variant` comes from a template placeholder such as {AGE:years}; None picks
# a random form.
# ---------------------------------------------------------------------------


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _group(s: str, sizes: list[int], sep: str) -> str:
    out, i = [], 0
    for size in sizes:
        out.append(s[i:i + size])
        i += size
    return sep.join(out)


def gen_name(rng, variant=None):
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def gen_address(rng, variant=None):
    kind = variant or rng.choice(["us", "us", "uk", "ca"])
    number = rng.randint(2, 9870)
    street = f"{rng.choice(STREET_NAMES)} {rng.choice(STREET_SUFFIXES)}"
    if kind == "us":
        city, state, zip3 = rng.choice(US_CITIES)
        unit = rng.choice(["", "", f", Apt {rng.randint(1, 40)}{rng.choice('ABCD')}", f", Suite {rng.randint(100, 950)}"])
        return f"{number} {street}{unit}, {city}, {state} {zip3}{_digits(rng, 2)}"
    if kind == "uk":
        city, area = rng.choice(UK_CITIES)
        letters = "ABDEFGHJLNPQRSTUWXYZ"
        postcode = f"{area}{rng.randint(1, 19)} {rng.randint(1, 9)}{rng.choice(letters)}{rng.choice(letters)}"
        flat = rng.choice(["", f"Flat {rng.randint(1, 12)}, "])
        return f"{flat}{rng.randint(1, 240)} {street}, {city} {postcode}"
    city, prov, first = rng.choice(CA_CITIES)
    letters = "ABCEGHJKLMNPRSTVXY"
    postal = (
        f"{first}{rng.randint(0, 9)}{rng.choice(letters)} "
        f"{rng.randint(0, 9)}{rng.choice(letters)}{rng.randint(0, 9)}"
    )
    return f"{number} {street}, {city}, {prov} {postal}"


def gen_age(rng, variant=None):
    kind = variant or rng.choice(["years", "n"])
    if kind == "years":
        return f"{rng.randint(18, 89)} years"
    if kind == "child":
        return str(rng.randint(5, 16))
    if kind == "months":
        return f"{rng.randint(4, 22)} months"
    return str(rng.randint(19, 94))


_B32 = string.ascii_uppercase + "234567"


def gen_aws_access_key(rng, variant=None):
    prefix = rng.choice(["AKIA", "AKIA", "AKIA", "ASIA"])
    return prefix + "".join(rng.choice(_B32) for _ in range(16))


def gen_aws_secret_key(rng, variant=None):
    alphabet = string.ascii_letters + string.digits + "+/"
    while True:
        key = "".join(rng.choice(alphabet) for _ in range(40))
        # Real keys mix classes; insist on a digit and both cases.
        if any(c.isdigit() for c in key) and any(c.islower() for c in key) and any(c.isupper() for c in key):
            return key


def gen_ca_health(rng, variant=None):
    kind = variant or rng.choice(["on", "bc"])
    if kind == "on":
        # Ontario health number: 10 digits, Luhn check digit; printed 4-3-3.
        d = luhn_complete(str(rng.randint(1, 9)) + _digits(rng, 8))
        return _group(d, [4, 3, 3], rng.choice(["-", " ", ""]))
    # British Columbia PHN: 9 + 8 digits + mod-11 check digit; printed 4-3-3.
    while True:
        d = "9" + _digits(rng, 8)
        weights = [2, 4, 8, 5, 10, 9, 7, 3]
        check = 11 - sum(int(c) * w for c, w in zip(d[1:9], weights)) % 11
        if check < 10:
            return _group(d + str(check), [4, 3, 3], rng.choice([" ", ""]))


def gen_ca_sin(rng, variant=None):
    first = rng.choice("12345679")
    d = luhn_complete(first + _digits(rng, 7))
    return _group(d, [3, 3, 3], rng.choice(["-", " ", " ", ""]))


def gen_cvv(rng, variant=None):
    n = 4 if variant == "4" else 3
    return _digits(rng, n)


def gen_expiry(rng, variant=None):
    month = rng.randint(1, 12)
    year = rng.randint(2025, 2031)
    form = rng.choice(["mm/yy", "mm/yy", "mm/yyyy", "mm-yy"])
    if form == "mm/yy":
        return f"{month:02d}/{year % 100:02d}"
    if form == "mm/yyyy":
        return f"{month:02d}/{year}"
    return f"{month:02d}-{year % 100:02d}"


def gen_card(rng, variant=None):
    brand = variant or rng.choice(["visa", "visa", "mc", "mc2", "amex", "discover"])
    if brand == "amex":
        d = luhn_complete(rng.choice(["34", "37"]) + _digits(rng, 12))
        return _group(d, [4, 6, 5], rng.choice([" ", "-", ""]))
    if brand == "visa":
        payload = "4" + _digits(rng, 14)
    elif brand == "mc":
        payload = str(rng.randint(51, 55)) + _digits(rng, 13)
    elif brand == "mc2":
        payload = str(rng.randint(2221, 2720)) + _digits(rng, 11)
    else:  # discover
        payload = "6011" + _digits(rng, 11)
    d = luhn_complete(payload)
    return _group(d, [4, 4, 4, 4], rng.choice([" ", " ", "-", ""]))


def gen_driver_id(rng, variant=None):
    letters = string.ascii_uppercase
    kind = variant or rng.choice(["ca", "ny", "fl", "il", "tx", "uk"])
    if kind == "ca":  # California: letter + 7 digits
        return rng.choice(letters) + _digits(rng, 7)
    if kind == "ny":  # New York: 9 digits, often printed 3-3-3
        return _group(str(rng.randint(1, 9)) + _digits(rng, 8), [3, 3, 3], rng.choice([" ", ""]))
    if kind == "fl":  # Florida: letter + 12 digits, printed X123-456-78-901-0
        return rng.choice(letters) + _group(_digits(rng, 12), [3, 3, 2, 3, 1], "-")
    if kind == "il":  # Illinois: letter + 11 digits, printed X123-4567-8901
        return rng.choice(letters) + _group(_digits(rng, 11), [3, 4, 4], "-")
    if kind == "tx":  # Texas: 8 digits
        return str(rng.randint(1, 4)) + _digits(rng, 7)
    # UK driving licence: surname(5, 9-padded) + decade + month(+5 female)
    # + day + year + initials(2, 9-padded) + digit + 2 letters.
    surname = re.sub(r"[^A-Z]", "", rng.choice(LAST_NAMES).upper())[:5].ljust(5, "9")
    year = rng.randint(1950, 2004)
    month = rng.randint(1, 12) + rng.choice([0, 50])
    initials = (rng.choice(letters) + rng.choice(letters + "9"))
    return (
        f"{surname}{str(year)[2]}{month:02d}{rng.randint(1, 28):02d}{str(year)[3]}"
        f"{initials}{rng.randint(1, 9)}{rng.choice(letters)}{rng.choice(letters)}"
    )


def gen_email(rng, variant=None):
    first = rng.choice(FIRST_NAMES).lower().replace("-", "")
    last = re.sub(r"[^a-z]", "", rng.choice(LAST_NAMES).lower())
    local = rng.choice([
        f"{first}.{last}", f"{first[0]}{last}", f"{first}_{last}{rng.randint(1, 99)}",
        f"{first}{rng.randint(70, 99)}", f"{first}+billing", f"{last}.{first[0]}",
    ])
    return f"{local}@{rng.choice(EMAIL_DOMAINS)}"


def gen_iban(rng, variant=None):
    country = variant or rng.choice(["GB", "DE", "FR", "ES", "NL"])
    if country == "GB":
        bank = rng.choice(["NWBK", "BARC", "LOYD", "HBUK", "MIDL", "BUKB"])
        bban = bank + _digits(rng, 6) + _digits(rng, 8)
    elif country == "DE":
        bban = str(rng.randint(1, 8)) + _digits(rng, 7) + _digits(rng, 10)
    elif country == "FR":
        bank, branch, account = _digits(rng, 5), _digits(rng, 5), _digits(rng, 11)
        rib = 97 - (89 * int(bank) + 15 * int(branch) + 3 * int(account)) % 97
        bban = f"{bank}{branch}{account}{rib:02d}"
    elif country == "ES":
        bank, branch, account = _digits(rng, 4), _digits(rng, 4), _digits(rng, 10)
        weights = [1, 2, 4, 8, 5, 10, 9, 7, 3, 6]

        def dc(ten: str) -> str:
            d = 11 - sum(int(c) * w for c, w in zip(ten, weights)) % 11
            return str({11: 0, 10: 1}.get(d, d))

        bban = bank + branch + dc("00" + bank + branch) + dc(account) + account
    else:  # NL: bank code + 10-digit account passing the 11-test
        bank = rng.choice(["ABNA", "RABO", "INGB", "TRIO", "SNSB", "ASNB"])
        while True:
            account = _digits(rng, 10)
            if account[0] != "0" and sum(int(c) * (10 - i) for i, c in enumerate(account)) % 11 == 0:
                break
        bban = bank + account
    iban = iban_complete(country, bban)
    if rng.random() < 0.6:  # the printed form: groups of four
        iban = " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))
    return iban


def gen_ip(rng, variant=None):
    kind = variant or rng.choice(["v4", "v4", "v4", "private", "v6"])
    if kind == "v6":
        groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(8)]
        groups[0] = rng.choice(["2001", "2a02", "2600", "2804", "2406"])
        if rng.random() < 0.5:  # compressed form
            return ":".join(groups[:3]) + "::" + ":".join(groups[5:])
        return ":".join(groups)
    if kind == "private":
        return rng.choice([
            f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            f"172.{rng.randint(16, 31)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        ])
    first = rng.choice([n for n in range(11, 224) if n not in (100, 127, 169, 172, 192)])
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def gen_license_plate(rng, variant=None):
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    kind = variant or rng.choice(["ca", "ny", "tx", "uk", "fl"])
    L = lambda n: "".join(rng.choice(letters) for _ in range(n))  # noqa: E731
    if kind == "ca":  # California: 1ABC234
        return f"{rng.randint(1, 9)}{L(3)}{_digits(rng, 3)}"
    if kind == "ny":  # New York: ABC-1234
        return f"{L(3)}-{_digits(rng, 4)}"
    if kind == "tx":  # Texas: ABC-1234 or ABC 1234
        return f"{L(3)}{rng.choice(['-', ' '])}{_digits(rng, 4)}"
    if kind == "fl":  # Florida: ABC D12
        return f"{L(3)} {L(1)}{_digits(rng, 2)}"
    # UK: two letters, two-digit age identifier, space, three letters.
    age = rng.choice(["15", "17", "19", "21", "22", "23", "24", "66", "68", "70", "71", "72", "73"])
    return f"{L(2)}{age} {L(3)}"


def gen_mac(rng, variant=None):
    octets = [rng.randint(0, 255) for _ in range(6)]
    octets[0] &= 0xFE  # unicast
    form = rng.choice(["colon", "colon", "dash", "cisco"])
    hexes = [f"{o:02x}" for o in octets]
    if rng.random() < 0.5:
        hexes = [h.upper() for h in hexes]
    if form == "colon":
        return ":".join(hexes)
    if form == "dash":
        return "-".join(hexes)
    joined = "".join(hexes).lower()
    return ".".join(joined[i:i + 4] for i in (0, 4, 8))


def gen_password(rng, variant=None):
    form = rng.choice(["word", "random", "phrase", "leet"])
    if form == "word":
        return f"{rng.choice(PASSWORD_WORDS)}{rng.choice('!#$%&*@')}{rng.randint(10, 2025)}"
    if form == "random":
        alphabet = string.ascii_letters + string.digits + "!#$%&*@^"
        while True:
            p = "".join(rng.choice(alphabet) for _ in range(rng.randint(10, 16)))
            if any(c.isdigit() for c in p) and any(not c.isalnum() for c in p):
                return p
    if form == "phrase":
        words = rng.sample([w.lower() for w in PASSWORD_WORDS], 3)
        return "-".join(words) + str(rng.randint(1, 99))
    word = rng.choice(PASSWORD_WORDS)
    leet = word.translate(str.maketrans({"a": "4", "e": "3", "o": "0", "i": "1"}))
    return leet + rng.choice("!?#") + str(rng.randint(0, 9))


def gen_phone(rng, variant=None):
    kind = variant or rng.choice(["us", "us", "us", "uk"])
    if kind == "uk":
        form = rng.choice(["london", "mobile", "mobile_intl", "london_intl"])
        if form == "london":
            return f"020 {rng.choice('378')}{_digits(rng, 3)} {_digits(rng, 4)}"
        if form == "london_intl":
            return f"+44 20 {rng.choice('378')}{_digits(rng, 3)} {_digits(rng, 4)}"
        mobile = f"7{rng.choice('45789')}{_digits(rng, 2)} {_digits(rng, 6)}"
        return ("0" + mobile) if form == "mobile" else ("+44 " + mobile)
    area = rng.choice(US_AREA_CODES)
    while True:
        exchange = f"{rng.randint(2, 9)}{_digits(rng, 2)}"
        if exchange[1:] != "11" and exchange != "555":
            break
    line = _digits(rng, 4)
    form = rng.choice(["paren", "dash", "dot", "intl", "intl_dash"])
    return {
        "paren": f"({area}) {exchange}-{line}",
        "dash": f"{area}-{exchange}-{line}",
        "dot": f"{area}.{exchange}.{line}",
        "intl": f"+1 {area} {exchange} {line}",
        "intl_dash": f"+1-{area}-{exchange}-{line}",
    }[form]


def gen_pin(rng, variant=None):
    return _digits(rng, rng.choice([4, 4, 4, 6]))


def gen_swift(rng, variant=None):
    bank, country, location = rng.choice(SWIFT_BANKS)
    if rng.random() < 0.3:
        location = rng.choice(string.ascii_uppercase) + rng.choice(string.ascii_uppercase + "0123456789")
    branch = rng.choice(["", "", "XXX", f"{rng.choice('ABCDEFGH')}{_digits(rng, 2)}"])
    return bank + country + location + branch


def gen_nhs(rng, variant=None):
    while True:
        d = rng.choice("4679") + _digits(rng, 8)
        check = 11 - sum(int(c) * (10 - i) for i, c in enumerate(d)) % 11
        if check == 11:
            check = 0
        if check != 10:
            break
    d += str(check)
    return _group(d, [3, 3, 4], rng.choice([" ", " ", "-", ""]))


def gen_nino(rng, variant=None):
    while True:
        prefix = rng.choice(NINO_FIRST) + rng.choice(NINO_SECOND)
        if prefix not in NINO_BAD_PREFIXES:
            break
    d = _digits(rng, 6)
    suffix = rng.choice("ABCD")
    if rng.random() < 0.5:
        return f"{prefix} {d[:2]} {d[2:4]} {d[4:]} {suffix}"
    return f"{prefix}{d}{suffix}"


def gen_utr(rng, variant=None):
    rest = str(rng.randint(1, 9)) + _digits(rng, 8)
    weights = [6, 7, 8, 9, 10, 5, 4, 3, 2]
    r = sum(int(c) * w for c, w in zip(rest, weights)) % 11
    d = _UTR_CHECK[r] + rest
    return d if rng.random() < 0.6 else f"{d[:5]} {d[5:]}"


def gen_url(rng, variant=None):
    host = rng.choice(WEB_HOSTS)
    path = rng.choice(URL_PATHS)
    query = rng.choice(["", "", f"?id={rng.randint(1000, 99999)}", f"?ref=email&utm_campaign=spring{rng.randint(1, 9)}"])
    if rng.random() < 0.2:  # written without a scheme
        return f"{host}/{path}"
    return f"{rng.choice(['https', 'https', 'http'])}://{host}/{path}{query}"


def gen_username(rng, variant=None):
    first = rng.choice(FIRST_NAMES).lower().replace("-", "")
    last = re.sub(r"[^a-z]", "", rng.choice(LAST_NAMES).lower())
    return rng.choice([
        f"{first[0]}{last}{rng.randint(1, 99)}",
        f"{rng.choice(USERNAME_WORDS)}_{rng.choice(USERNAME_WORDS)}{rng.randint(1, 999)}",
        f"{first}.{last}",
        f"{rng.choice(USERNAME_WORDS)}{rng.choice(USERNAME_WORDS).capitalize()}{rng.randint(10, 99)}",
        f"{first}_{rng.randint(1980, 2006)}",
    ])


def gen_us_bank_account(rng, variant=None):
    return str(rng.randint(1, 9)) + _digits(rng, rng.randint(9, 11))


def gen_aba(rng, variant=None):
    prefix = f"{rng.choice(list(range(1, 13)) + list(range(21, 33)) + list(range(61, 73)) + [80]):02d}"
    body = prefix + _digits(rng, 6)
    d = [int(c) for c in body]
    partial = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5])
    return body + str((10 - partial % 10) % 10)


def gen_itin(rng, variant=None):
    d = f"9{_digits(rng, 2)}{rng.choice(ITIN_GROUPS):02d}{_digits(rng, 4)}"
    return _group(d, [3, 2, 4], rng.choice(["-", "-", " "]))


def gen_us_passport(rng, variant=None):
    if rng.random() < 0.4:  # next-generation books: a letter and 8 digits
        return rng.choice("ACEFGHJKLMNPRSTUVWXYZ") + _digits(rng, 8)
    return str(rng.randint(1, 9)) + _digits(rng, 8)


# Numbers everyone knows as examples/test values; a generator never emits them.
_FAMOUS_SSNS = {"078051120", "123456789", "219099999", "457555462"}


def gen_ssn(rng, variant=None):
    while True:
        area = rng.randint(1, 899)
        if area == 666:
            continue
        d = f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
        if d not in _FAMOUS_SSNS:
            break
    return _group(d, [3, 2, 4], rng.choice(["-", "-", "-", " ", ""]))


def gen_vin(rng, variant=None):
    year_codes = "ABCDEFGHJKLMNPRS"  # 2010-2025
    vds = "".join(rng.choice(VIN_CHARS) for _ in range(5))
    plant = rng.choice(VIN_CHARS)
    serial = _digits(rng, 6)
    vin = rng.choice(VIN_WMIS) + vds + "0" + rng.choice(year_codes) + plant + serial
    return vin[:8] + vin_check_char(vin) + vin[9:]


GENERATORS: dict[str, Callable] = {
    "ADDRESS": gen_address,
    "AGE": gen_age,
    "AWS_ACCESS_KEY": gen_aws_access_key,
    "AWS_SECRET_KEY": gen_aws_secret_key,
    "CA_HEALTH_NUMBER": gen_ca_health,
    "CA_SOCIAL_INSURANCE_NUMBER": gen_ca_sin,
    "CREDIT_DEBIT_CARD_CVV": gen_cvv,
    "CREDIT_DEBIT_CARD_EXPIRY": gen_expiry,
    "CREDIT_DEBIT_CARD_NUMBER": gen_card,
    "DRIVER_ID": gen_driver_id,
    "EMAIL": gen_email,
    "INTERNATIONAL_BANK_ACCOUNT_NUMBER": gen_iban,
    "IP_ADDRESS": gen_ip,
    "LICENSE_PLATE": gen_license_plate,
    "MAC_ADDRESS": gen_mac,
    "NAME": gen_name,
    "PASSWORD": gen_password,
    "PHONE": gen_phone,
    "PIN": gen_pin,
    "SWIFT_CODE": gen_swift,
    "UK_NATIONAL_HEALTH_SERVICE_NUMBER": gen_nhs,
    "UK_NATIONAL_INSURANCE_NUMBER": gen_nino,
    "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER": gen_utr,
    "URL": gen_url,
    "USERNAME": gen_username,
    "US_BANK_ACCOUNT_NUMBER": gen_us_bank_account,
    "US_BANK_ROUTING_NUMBER": gen_aba,
    "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER": gen_itin,
    "US_PASSPORT_NUMBER": gen_us_passport,
    "US_SOCIAL_SECURITY_NUMBER": gen_ssn,
    "VEHICLE_IDENTIFICATION_NUMBER": gen_vin,
}

# Non-PII fillers, placeholders in lower case: {ticket}, {date}, ...
MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December",
]


def _date(rng):
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    year = rng.randint(2019, 2026)
    return rng.choice([
        f"{MONTHS[month - 1]} {day}", f"{year}-{month:02d}-{day:02d}",
        f"{day} {MONTHS[month - 1]} {year}", f"{MONTHS[month - 1]} {day}, {year}",
    ])


def _time(rng):
    h, m = rng.randint(7, 18), rng.choice([0, 15, 30, 45])
    return rng.choice([f"{h}:{m:02d}", f"{(h - 1) % 12 + 1}:{m:02d} {'AM' if h < 12 else 'PM'}"])


FILLERS: dict[str, Callable] = {
    "ticket": lambda rng: str(rng.randint(10000, 99999)),
    "date": _date,
    "time": _time,
    "invoice": lambda rng: f"{rng.randint(2021, 2025)}-{rng.randint(1, 999):04d}",
    "mileage": lambda rng: f"{rng.randint(5, 180)},{rng.randint(0, 999):03d} miles",
    "clinic": lambda rng: rng.choice(["Riverside Family Clinic", "Lakeshore Medical Centre", "North End Walk-in"]),
}

# ---------------------------------------------------------------------------
# Templates: {TYPE} or {TYPE:variant} inserts a labelled PII value; {filler}
# inserts an unlabelled non-PII value. At least four templates per type, in
# several registers (chat, support ticket, form, email). Templates never hold
# unlabelled PII.
# ---------------------------------------------------------------------------

TEMPLATES: dict[str, list[str]] = {
    "ADDRESS": [
        "Please ship the replacement to {ADDRESS} by Friday.",
        "Ticket #{ticket}: customer reports the parcel never arrived at {ADDRESS}.",
        "Billing address: {ADDRESS}\nResidence type: apartment",
        "hey, we moved! new place is {ADDRESS}, come by anytime",
        "Hi {NAME},\n\nWe have updated your mailing address to {ADDRESS}. Reply to this email if that is wrong.",
        "The inspection is booked for {date} at {ADDRESS}.",
    ],
    "AGE": [
        "I'm {AGE:years} old and looking for a term life policy, what are my options?",
        "Membership form\nAge: {AGE:n}\nPreferred contact: email",
        "My daughter just turned {AGE:child} and wants her own library card.",
        "Patient note: {NAME} is {AGE:years} of age and reports mild chest pain.",
        "The applicant, aged {AGE:n}, has asked for a review of the premium.",
        "our youngest is only {AGE:months} old so we need a crib in the room",
    ],
    "AWS_ACCESS_KEY": [
        "I accidentally committed my access key {AWS_ACCESS_KEY} to the repo, how do I rotate it?",
        "[default]\naws_access_key_id = {AWS_ACCESS_KEY}\nregion = us-east-1",
        "Ticket #{ticket}: CloudTrail shows API calls from key {AWS_ACCESS_KEY} that nobody recognises.",
        "export AWS_ACCESS_KEY_ID={AWS_ACCESS_KEY}",
        "Can you check why {AWS_ACCESS_KEY} gets AccessDenied on the reports bucket?",
    ],
    "AWS_SECRET_KEY": [
        "aws_secret_access_key = {AWS_SECRET_KEY}",
        "Here are the creds for staging: key id {AWS_ACCESS_KEY}, secret {AWS_SECRET_KEY}",
        "The secret key {AWS_SECRET_KEY} was pasted into the public channel, please revoke it.",
        "export AWS_SECRET_ACCESS_KEY={AWS_SECRET_KEY}",
        "Ticket #{ticket}: the rotated secret is {AWS_SECRET_KEY} (old one disabled).",
    ],
    "CA_HEALTH_NUMBER": [
        "My Ontario health card number is {CA_HEALTH_NUMBER:on}, can I book a flu shot?",
        "Personal Health Number (PHN): {CA_HEALTH_NUMBER:bc}",
        "Intake form\nHealth card no.: {CA_HEALTH_NUMBER}\nClinic: {clinic}",
        "Please attach the OHIP number {CA_HEALTH_NUMBER:on} to the referral for {NAME}.",
        "hi, the pharmacy says my health number {CA_HEALTH_NUMBER} isn't on file",
    ],
    "CA_SOCIAL_INSURANCE_NUMBER": [
        "My SIN is {CA_SOCIAL_INSURANCE_NUMBER}, do you need anything else for payroll?",
        "Employee onboarding\nSocial Insurance Number: {CA_SOCIAL_INSURANCE_NUMBER}\nStart date: {date}",
        "The CRA letter lists social insurance number {CA_SOCIAL_INSURANCE_NUMBER} but that isn't mine.",
        "{NAME}, SIN {CA_SOCIAL_INSURANCE_NUMBER}, requested a T4 reissue.",
        "numero d'assurance sociale / social insurance no: {CA_SOCIAL_INSURANCE_NUMBER}",
    ],
    "CREDIT_DEBIT_CARD_CVV": [
        "The CVV on the back is {CREDIT_DEBIT_CARD_CVV:3}.",
        "Card: {CREDIT_DEBIT_CARD_NUMBER:visa}, exp {CREDIT_DEBIT_CARD_EXPIRY}, CVV {CREDIT_DEBIT_CARD_CVV:3}",
        "It's an Amex so the security code is {CREDIT_DEBIT_CARD_CVV:4}, four digits on the front.",
        "Payment form\nCard security code (CVC): {CREDIT_DEBIT_CARD_CVV:3}\nSave card: no",
        "agent asked me for the cvv and i said {CREDIT_DEBIT_CARD_CVV:3}, was that a scam?",
    ],
    "CREDIT_DEBIT_CARD_EXPIRY": [
        "My card expires {CREDIT_DEBIT_CARD_EXPIRY}, will the subscription renew?",
        "Payment details\nExpiration date: {CREDIT_DEBIT_CARD_EXPIRY}",
        "Use the company Mastercard, valid thru {CREDIT_DEBIT_CARD_EXPIRY}.",
        "Card number {CREDIT_DEBIT_CARD_NUMBER} exp. {CREDIT_DEBIT_CARD_EXPIRY}",
        "the new debit card came today, exp date is {CREDIT_DEBIT_CARD_EXPIRY} and it's already activated",
    ],
    "CREDIT_DEBIT_CARD_NUMBER": [
        "Please charge {CREDIT_DEBIT_CARD_NUMBER} for the annual plan.",
        "Card number: {CREDIT_DEBIT_CARD_NUMBER}",
        "hey can u pay for the tickets? my visa is {CREDIT_DEBIT_CARD_NUMBER:visa} lol",
        "Ticket #{ticket}: customer disputes a charge on card {CREDIT_DEBIT_CARD_NUMBER}.",
        "Hi {NAME}, your refund to {CREDIT_DEBIT_CARD_NUMBER} was processed on {date}.",
        "Amex {CREDIT_DEBIT_CARD_NUMBER:amex}, please keep it on file",
    ],
    "DRIVER_ID": [
        "My driver's license number is {DRIVER_ID}.",
        "Rental agreement\nDriver licence no.: {DRIVER_ID}\nVehicle class: compact",
        "Ticket #{ticket}: DMV record for license {DRIVER_ID} shows a suspended status.",
        "{NAME} presented DL# {DRIVER_ID} at the counter.",
        "my UK driving licence number is {DRIVER_ID:uk}, does that work for the hire car?",
    ],
    "EMAIL": [
        "You can reach me at {EMAIL} any time after 5pm.",
        "From: {EMAIL}\nSubject: Invoice question",
        "Please add {EMAIL} to the mailing list.",
        "Contact: {NAME} <{EMAIL}>",
        "Ticket #{ticket}: password reset emails to {EMAIL} are bouncing.",
    ],
    "INTERNATIONAL_BANK_ACCOUNT_NUMBER": [
        "Please wire the deposit to IBAN {INTERNATIONAL_BANK_ACCOUNT_NUMBER}.",
        "Beneficiary IBAN: {INTERNATIONAL_BANK_ACCOUNT_NUMBER}\nReference: INV-{invoice}",
        "can you send the refund to my account {INTERNATIONAL_BANK_ACCOUNT_NUMBER}? thanks",
        "Bank details: {INTERNATIONAL_BANK_ACCOUNT_NUMBER}, BIC {SWIFT_CODE}",
        "Ticket #{ticket}: SEPA transfer to {INTERNATIONAL_BANK_ACCOUNT_NUMBER} was returned.",
    ],
    "IP_ADDRESS": [
        "Failed login attempts from {IP_ADDRESS} overnight, should we block it?",
        "Server log: connection refused for client {IP_ADDRESS} on port 443",
        "my home IP is {IP_ADDRESS}, can you whitelist it?",
        "Ticket #{ticket}: user {USERNAME} signed in from {IP_ADDRESS}.",
        "Firewall change request\nAllowed source: {IP_ADDRESS:v6}\nReason: remote office",
    ],
    "LICENSE_PLATE": [
        "A silver sedan with plate {LICENSE_PLATE} has been parked in my spot all week.",
        "Parking permit application\nVehicle registration: {LICENSE_PLATE}",
        "Ticket #{ticket}: toll charge for plate {LICENSE_PLATE} appears twice.",
        "The car that hit me had license plate {LICENSE_PLATE}, I got a photo.",
        "The van belonging to {NAME}, reg {LICENSE_PLATE:uk}, is booked in for its MOT.",
    ],
    "MAC_ADDRESS": [
        "Please add device {MAC_ADDRESS} to the guest Wi-Fi allowlist.",
        "DHCP lease: hw {MAC_ADDRESS} offered {IP_ADDRESS:private}",
        "my laptop's MAC is {MAC_ADDRESS}, still can't connect",
        "Ticket #{ticket}: unknown device with MAC address {MAC_ADDRESS} on the office network.",
        "Asset register\nWired NIC: {MAC_ADDRESS}\nLocation: 3rd floor",
    ],
    "NAME": [
        "Hi, my name is {NAME} and I'd like to cancel my subscription.",
        "Please forward this to {NAME} in accounting.",
        "Dr. {NAME} will see you at {time} on {date}.",
        "Employee: {NAME}\nDepartment: Logistics\nManager: {NAME}",
        "Thanks again, {NAME}! The workshop was great.",
        "Ticket #{ticket}: {NAME} called about a billing error, call back at {PHONE}.",
    ],
    "PASSWORD": [
        "my password is {PASSWORD} and it still says invalid credentials",
        "Username: {USERNAME}\nPassword: {PASSWORD}",
        "Temporary password: {PASSWORD} (you'll be asked to change it on first login)",
        "wifi password for the cabin is {PASSWORD} btw",
        "Ticket #{ticket}: user shared their password \"{PASSWORD}\" in the chat, please force a reset.",
    ],
    "PHONE": [
        "Call me back at {PHONE} when you get a chance.",
        "Phone: {PHONE}\nBest time to call: mornings",
        "Ticket #{ticket}: customer's callback number is {PHONE}.",
        "Fax the signed form to {PHONE} before noon.",
        "{NAME} - mobile {PHONE}",
        "text me on {PHONE:uk} if you're running late",
    ],
    "PIN": [
        "my PIN is {PIN} but the ATM keeps rejecting it",
        "Your new card PIN: {PIN}. Do not share it with anyone.",
        "Ticket #{ticket}: caller verified with voicemail PIN {PIN}.",
        "Set the door keypad PIN to {PIN} for the weekend guests.",
        "Debit card {CREDIT_DEBIT_CARD_NUMBER}, PIN {PIN}",
    ],
    "SWIFT_CODE": [
        "The SWIFT code for my bank is {SWIFT_CODE}.",
        "Beneficiary bank BIC: {SWIFT_CODE}\nCurrency: EUR",
        "For international transfers use SWIFT/BIC {SWIFT_CODE} and your account number.",
        "Ticket #{ticket}: wire held because BIC {SWIFT_CODE} does not match IBAN {INTERNATIONAL_BANK_ACCOUNT_NUMBER}.",
        "can you double check the swift {SWIFT_CODE}? the transfer bounced",
    ],
    "UK_NATIONAL_HEALTH_SERVICE_NUMBER": [
        "My NHS number is {UK_NATIONAL_HEALTH_SERVICE_NUMBER}, I need to register with a new GP.",
        "Patient: {NAME}\nNHS No: {UK_NATIONAL_HEALTH_SERVICE_NUMBER}",
        "Referral letter - NHS number {UK_NATIONAL_HEALTH_SERVICE_NUMBER} - urgent",
        "Ticket #{ticket}: the NHS app shows the wrong records for {UK_NATIONAL_HEALTH_SERVICE_NUMBER}.",
        "hi, the pharmacy asked for my nhs number, it's {UK_NATIONAL_HEALTH_SERVICE_NUMBER}",
    ],
    "UK_NATIONAL_INSURANCE_NUMBER": [
        "My National Insurance number is {UK_NATIONAL_INSURANCE_NUMBER}.",
        "New starter form\nNI number: {UK_NATIONAL_INSURANCE_NUMBER}\nTax code: 1257L",
        "HMRC has my NINO as {UK_NATIONAL_INSURANCE_NUMBER} but the payslips show something else.",
        "{NAME} (NI {UK_NATIONAL_INSURANCE_NUMBER}) has asked for a copy of the P60.",
        "Ticket #{ticket}: please verify national insurance no. {UK_NATIONAL_INSURANCE_NUMBER} before payroll runs.",
    ],
    "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER": [
        "My UTR is {UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER}, I need help with my self assessment.",
        "Self Assessment\nUnique Taxpayer Reference: {UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER}\nTax year: 2023-24",
        "HMRC sent a letter quoting unique taxpayer reference {UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER}.",
        "Ticket #{ticket}: client {NAME}, UTR {UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER}, missed the January deadline.",
        "can u file the return for me? utr number is {UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER}",
    ],
    "URL": [
        "Here's the link to the shared doc: {URL}",
        "Ticket #{ticket}: page {URL} returns a 500 error.",
        "Visit {URL} to finish setting up your account.",
        "Source: {URL}",
        "{NAME} sent me {URL} but it asks for a login",
    ],
    "USERNAME": [
        "My username is {USERNAME} but I can't remember my password.",
        "Login: {USERNAME}\nLast seen: {date}",
        "Ticket #{ticket}: account {USERNAME} is locked after too many attempts.",
        "add me on discord, I'm {USERNAME}",
        "Please grant {USERNAME} read access to the analytics dashboard and notify {EMAIL}.",
    ],
    "US_BANK_ACCOUNT_NUMBER": [
        "My checking account number is {US_BANK_ACCOUNT_NUMBER}.",
        "Direct deposit\nRouting number: {US_BANK_ROUTING_NUMBER}\nAccount number: {US_BANK_ACCOUNT_NUMBER}",
        "Please debit account {US_BANK_ACCOUNT_NUMBER} for the monthly payment.",
        "Ticket #{ticket}: ACH return on acct no. {US_BANK_ACCOUNT_NUMBER}, insufficient funds.",
        "savings acct {US_BANK_ACCOUNT_NUMBER} at the credit union, can you send it there",
    ],
    "US_BANK_ROUTING_NUMBER": [
        "The routing number is {US_BANK_ROUTING_NUMBER}.",
        "ABA: {US_BANK_ROUTING_NUMBER}\nAccount type: checking",
        "Wire instructions: routing {US_BANK_ROUTING_NUMBER}, account {US_BANK_ACCOUNT_NUMBER}",
        "Ticket #{ticket}: payroll file has routing number {US_BANK_ROUTING_NUMBER}, flagged for review.",
        "what's the routing # for my bank, is it {US_BANK_ROUTING_NUMBER}?",
    ],
    "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER": [
        "My ITIN is {US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER}, I don't have a social security number.",
        "W-7 follow-up\nITIN: {US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER}\nStatus: assigned",
        "Ticket #{ticket}: the IRS letter lists individual taxpayer identification number {US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER}.",
        "{NAME} filed with ITIN {US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER} last year.",
        "can i open an account with my itin {US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER}?",
    ],
    "US_PASSPORT_NUMBER": [
        "My passport number is {US_PASSPORT_NUMBER}.",
        "Traveler: {NAME}\nUS Passport No.: {US_PASSPORT_NUMBER}",
        "Ticket #{ticket}: passport {US_PASSPORT_NUMBER} was reported lost, please cancel the booking.",
        "Visa application\nPassport number: {US_PASSPORT_NUMBER}\nNationality: United States",
        "just renewed my passport, new number is {US_PASSPORT_NUMBER}",
    ],
    "US_SOCIAL_SECURITY_NUMBER": [
        "My SSN is {US_SOCIAL_SECURITY_NUMBER}.",
        "Benefits enrollment\nSocial Security Number: {US_SOCIAL_SECURITY_NUMBER}\nDate of request: {date}",
        "Ticket #{ticket}: caller verified identity with social security number {US_SOCIAL_SECURITY_NUMBER}.",
        "The social for {NAME} is {US_SOCIAL_SECURITY_NUMBER}, please update the W-2.",
        "ssn {US_SOCIAL_SECURITY_NUMBER} - is it safe to put this on the rental application?",
    ],
    "VEHICLE_IDENTIFICATION_NUMBER": [
        "The VIN is {VEHICLE_IDENTIFICATION_NUMBER}, can you check for open recalls?",
        "Vehicle details\nVIN: {VEHICLE_IDENTIFICATION_NUMBER}\nMileage: {mileage}",
        "Ticket #{ticket}: insurance quote needed for vehicle identification number {VEHICLE_IDENTIFICATION_NUMBER}.",
        "I'm selling my car, VIN {VEHICLE_IDENTIFICATION_NUMBER}, plate {LICENSE_PLATE}.",
        "carfax for {VEHICLE_IDENTIFICATION_NUMBER} shows an accident, is that right?",
    ],
}

_PLACEHOLDER = re.compile(r"\{([A-Za-z_]+)(?::([a-z0-9]+))?\}")


def render(rng: random.Random, template: str) -> dict:
    """Fill a template, recording the span of every PII value inserted."""
    parts: list[str] = []
    entities: list[dict] = []
    length = 0
    pos = 0
    for m in _PLACEHOLDER.finditer(template):
        literal = template[pos:m.start()]
        parts.append(literal)
        length += len(literal)
        key, variant = m.group(1), m.group(2)
        if key.isupper():
            value = GENERATORS[key](rng, variant)
            entities.append({"type": key, "start": length, "end": length + len(value)})
        else:
            value = FILLERS[key](rng)
        parts.append(value)
        length += len(value)
        pos = m.end()
    parts.append(template[pos:])
    return {"text": "".join(parts), "entities": entities}


def generate(seed: int = 7, per_type: int = 20) -> list[dict]:
    """`per_type` labelled texts for each of Bedrock's 31 PII types.

    Templates of a type are used in turn (a seeded shuffle decides the
    order), so every template appears once `per_type` >= their number.
    Each item also carries "primary": the type the text was made for.
    """
    rng = random.Random(seed)
    items = []
    for kind in BEDROCK_TYPES:
        templates = list(TEMPLATES[kind])
        rng.shuffle(templates)
        for i in range(per_type):
            item = render(rng, templates[i % len(templates)])
            item["primary"] = kind
            items.append(item)
    return items


# ---------------------------------------------------------------------------
# Negatives: texts with no PII.
# ---------------------------------------------------------------------------


def _non_luhn_16(rng: random.Random) -> str:
    d = str(rng.randint(1, 9)) + _digits(rng, 15)
    if luhn_ok(d):
        d = d[:-1] + str((int(d[-1]) + 1) % 10)  # one step off is never valid
    return d


def _grouped_non_luhn(rng):
    d = _non_luhn_16(rng)
    return _group(d, [4, 4, 4, 4], rng.choice([" ", "-", ""]))


NEGATIVE_FILLERS: dict[str, Callable] = {
    "nonluhn": _grouped_non_luhn,
    "order": lambda rng: rng.choice([
        f"{rng.randint(100000, 9999999)}", f"A-{rng.randint(10000, 99999)}-{rng.randint(10, 99)}",
        f"ORD-{rng.randint(2021, 2025)}-{rng.randint(100000, 999999)}",
    ]),
    "date": _date,
    "time": _time,
    "price": lambda rng: rng.choice([
        f"${rng.randint(1, 2999):,}.{rng.randint(0, 99):02d}", f"EUR {rng.randint(5, 900)}.00",
        f"{rng.randint(2, 500)}.{rng.choice(['00', '50', '99'])} USD",
    ]),
    "version": lambda rng: rng.choice([
        f"{rng.randint(1, 14)}.{rng.randint(0, 30)}.{rng.randint(0, 20)}",
        f"v{rng.randint(1, 5)}.{rng.randint(0, 12)}",
        f"10.0.{rng.randint(17000, 22999)}.{rng.randint(1000, 4999)}",
        f"{rng.randint(1, 4)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}-rc{rng.randint(1, 4)}",
    ]),
    "qty": lambda rng: str(rng.randint(2, 480)),
    "weight": lambda rng: f"{rng.randint(1, 40)}.{rng.randint(0, 9)} kg",
    "product": lambda rng: rng.choice([
        f"SKU-{rng.randint(10000, 99999)}-{rng.choice(['BLK', 'WHT', 'RED', 'GRN'])}",
        f"{rng.choice(['HX', 'TR', 'MB', 'QZ'])}-{rng.randint(100, 9999)}",
        f"PN {rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
    ]),
    "year": lambda rng: str(rng.randint(1890, 2025)),
    "room": lambda rng: str(rng.randint(101, 950)),
    "page": lambda rng: str(rng.randint(2, 400)),
    "percent": lambda rng: f"{rng.randint(1, 99)}%",
    "temp": lambda rng: f"{rng.randint(-10, 38)} degrees",
    "http": lambda rng: rng.choice(["404", "500", "502", "403", "429"]),
}

NEGATIVE_TEMPLATES: dict[str, list[str]] = {
    "non_luhn_16_digits": [
        "Your tracking number is {nonluhn}.",
        "Shipment reference: {nonluhn}",
        "Batch code {nonluhn} was printed on the carton.",
        "Quote {nonluhn} is valid for 30 days.",
    ],
    "order_number": [
        "Order #{order} has shipped and should arrive in 3-5 business days.",
        "Ticket: order {order} was delivered to the wrong floor.",
        "Can you check the status of order {order}? It still says processing.",
    ],
    "date": [
        "The meeting was moved to {date}.",
        "Our office is closed on {date} for the holiday.",
        "Deadline for submissions: {date}",
    ],
    "price": [
        "The total comes to {price} including tax.",
        "Is the {price} plan billed monthly or yearly?",
        "Refund of {price} issued to the original payment method.",
    ],
    "version": [
        "Upgrade to version {version} to fix the memory leak.",
        "The build server is still running {version}.",
        "Release notes for {version} are in the changelog.",
    ],
    "quantity": [
        "Please send {qty} more boxes of printer paper.",
        "We need {qty} chairs for the conference hall.",
        "The parcel weighs {weight} and ships tomorrow.",
    ],
    "product_code": [
        "Part number {product} is out of stock until next month.",
        "Item {product} was discontinued last season.",
        "Replace filter {product} every six months.",
    ],
    "year": [
        "The building was renovated in {year}.",
        "The company has been family-run since {year}.",
        "That song was a hit back in {year}.",
    ],
    "time": [
        "The store opens at {time} on weekdays.",
        "Standup is at {time} every morning.",
        "The last train leaves at {time}.",
    ],
    "misc_numbers": [
        "Room {room} is booked for the workshop.",
        "See page {page} of the handbook for details.",
        "Sales grew {percent} compared to last quarter.",
        "It was {temp} outside this morning.",
        "The checkout page returned HTTP {http} twice.",
    ],
    "ordinary_sentence": [
        "The meeting moved to the small conference room upstairs.",
        "Could you review the draft before lunch?",
        "The printer on the second floor is jammed again.",
        "I think the new onboarding flow is much clearer.",
        "Please remember to water the plants while I'm away.",
        "The quarterly report looks good, just fix the chart labels.",
        "Thanks for the quick turnaround on this!",
        "Let's push the launch until the testing is done.",
        "The coffee machine in the lobby is finally fixed.",
        "We should order more snacks for the offsite.",
        "Can someone take notes during the planning session?",
        "The new dashboard loads a lot faster than the old one.",
    ],
    "title_case": [
        "Quarterly Review: Budget Planning For The Marketing Team",
        "Annual Safety Training Is Mandatory For All Warehouse Staff",
        "Please Read The Updated Travel Policy Before Booking",
        "Welcome To The Product Design Guild",
        "Kitchen Cleaning Rota And Fridge Etiquette",
        "Customer Success Playbook, Second Edition",
        "Spring Cleaning Week Starts On Monday",
        "Introducing The New Expense Reporting Tool",
        "Office Closed For Maintenance This Weekend",
    ],
}


def negatives(seed: int = 7, n: int = 100) -> list[dict]:
    """`n` texts containing no PII; categories are used in turn."""
    rng = random.Random(seed * 7919 + 1)
    categories = list(NEGATIVE_TEMPLATES)
    # Each category's templates in a seeded order, used in turn (fewer repeats).
    order = {c: rng.sample(NEGATIVE_TEMPLATES[c], len(NEGATIVE_TEMPLATES[c])) for c in categories}
    items = []
    for i in range(n):
        category = categories[i % len(categories)]
        templates = order[category]
        template = templates[(i // len(categories)) % len(templates)]
        text = _PLACEHOLDER.sub(lambda m: NEGATIVE_FILLERS[m.group(1)](rng), template)
        items.append({"text": text, "entities": [], "category": category})
    return items


# ---------------------------------------------------------------------------
# Self-check
# ---------------------------------------------------------------------------

# Per-type validity checks on the labelled value.
VALIDATORS: dict[str, Callable[[str], bool]] = {
    "CREDIT_DEBIT_CARD_NUMBER": lambda v: luhn_ok(re.sub(r"\D", "", v))
    and re.match(r"^(4|5[1-5]|2(22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)|3[47]|6011)", re.sub(r"\D", "", v)) is not None,
    "INTERNATIONAL_BANK_ACCOUNT_NUMBER": iban_ok,
    "US_BANK_ROUTING_NUMBER": aba_ok,
    "UK_NATIONAL_HEALTH_SERVICE_NUMBER": lambda v: nhs_ok(re.sub(r"\D", "", v)),
    "CA_SOCIAL_INSURANCE_NUMBER": lambda v: luhn_ok(re.sub(r"\D", "", v)) and re.sub(r"\D", "", v)[0] in "12345679",
    # Ontario numbers carry a Luhn digit, British Columbia PHNs a mod-11 one.
    "CA_HEALTH_NUMBER": lambda v: luhn_ok(re.sub(r"\D", "", v)) or bc_phn_ok(re.sub(r"\D", "", v)),
    "VEHICLE_IDENTIFICATION_NUMBER": vin_ok,
    "US_SOCIAL_SECURITY_NUMBER": ssn_ok,
    "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER": itin_ok,
    "UK_NATIONAL_INSURANCE_NUMBER": nino_ok,
    "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER": lambda v: utr_ok(v.replace(" ", "")),
    "AWS_ACCESS_KEY": lambda v: re.fullmatch(r"(AKIA|ASIA)[A-Z2-7]{16}", v) is not None,
    "AWS_SECRET_KEY": lambda v: re.fullmatch(r"[A-Za-z0-9+/]{40}", v) is not None,
    "SWIFT_CODE": lambda v: re.fullmatch(r"[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?", v) is not None,
}


def self_check(items: list[dict], negs: list[dict]) -> list[str]:
    """Problems found in generated items (an empty list means all is well)."""
    problems = []
    for item in items:
        text = item["text"]
        if not text.isascii():
            problems.append(f"non-ASCII text: {text!r}")
        spans = sorted((e["start"], e["end"]) for e in item["entities"])
        for (s1, e1), (s2, _) in zip(spans, spans[1:]):
            if s2 < e1:
                problems.append(f"overlapping labels in {text!r}")
        for e in item["entities"]:
            if e["type"] not in BEDROCK_TYPES:
                problems.append(f"unknown type {e['type']}")
            value = text[e["start"]:e["end"]]
            if not value or value != value.strip():
                problems.append(f"bad span {e} in {text!r}")
            check = VALIDATORS.get(e["type"])
            if check and not check(value):
                problems.append(f"invalid {e['type']} value {value!r}")
        if not any(e["type"] == item["primary"] for e in item["entities"]):
            problems.append(f"primary type {item['primary']} missing in {text!r}")
    for item in negs:
        if item["entities"]:
            problems.append(f"negative with entities: {item['text']!r}")
        if not item["text"].isascii():
            problems.append(f"non-ASCII negative: {item['text']!r}")
        for run in re.findall(r"\d[\d -]{14,}\d", item["text"]):
            d = re.sub(r"\D", "", run)
            if len(d) == 16 and luhn_ok(d):
                problems.append(f"negative 16-digit number passes Luhn: {run!r}")
    return problems


def _values_round_trip(seed: int) -> list[str]:
    """Check offsets the independent way: re-render with the same RNG stream,
    capturing each inserted value, and compare with text[start:end]."""
    problems = []
    captured: list[str] = []
    originals = dict(GENERATORS)
    try:
        for k, f in originals.items():
            GENERATORS[k] = (lambda f: lambda r, v: captured.append(f(r, v)) or captured[-1])(f)
        items = generate(seed)
    finally:
        GENERATORS.update(originals)
    flat = [item["text"][e["start"]:e["end"]] for item in items for e in item["entities"]]
    if flat != captured:
        problems.append("text[start:end] differs from the inserted values")
    return problems


if __name__ == "__main__":
    from collections import Counter

    items = generate()
    negs = negatives()
    assert generate() == items and negatives() == negs, "generation is not deterministic"

    by_primary = Counter(item["primary"] for item in items)
    by_entity = Counter(e["type"] for item in items for e in item["entities"])
    multi = sum(1 for item in items if len({e["type"] for e in item["entities"]}) > 1)
    print(f"{len(items)} positive texts, {sum(by_entity.values())} entities, "
          f"{multi} texts with two or more entity types; {len(negs)} negatives\n")
    print(f"{'type':42} {'texts':>5} {'entities':>8} {'templates':>9}")
    for kind in BEDROCK_TYPES:
        print(f"{kind:42} {by_primary[kind]:5d} {by_entity[kind]:8d} {len(TEMPLATES[kind]):9d}")

    print("\nSamples (labelled values in [brackets]):")
    for kind in BEDROCK_TYPES:
        print(f"\n== {kind}")
        for item in [i for i in items if i["primary"] == kind][:3]:
            text = item["text"]
            for e in sorted(item["entities"], key=lambda e: -e["start"]):
                text = text[:e["start"]] + "[" + text[e["start"]:e["end"]] + "]" + text[e["end"]:]
            print("  " + text.replace("\n", " | "))

    print("\n== negatives by category:", dict(Counter(n["category"] for n in negs)))
    for item in negs[:12]:
        print("  " + item["text"].replace("\n", " | "))

    problems = self_check(items, negs) + _values_round_trip(7)
    assert len(set(BEDROCK_TYPES)) == 31 and set(TEMPLATES) == set(BEDROCK_TYPES) == set(GENERATORS)
    assert all(len(t) >= 4 for t in TEMPLATES.values())
    if problems:
        print(f"\nSELF-CHECK FAILED ({len(problems)} problems):")
        for p in problems[:50]:
            print("  " + p)
        raise SystemExit(1)
    print("\nself-check OK: every offset, checksum and negative verified")
