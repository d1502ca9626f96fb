"""Held-out labelled PII test set for the guardrails benchmark.

Written independently of the main generator (pii_data.py) and of the
detector code: own templates, own name lists, own value generators.

API
---
generate(seed=1234, per_type=15) -> list[dict]
    Items {"text": str, "entities": [{"type", "start", "end"}]} with
    character offsets (end exclusive).  `per_type` items are produced for
    each of the 31 Amazon Bedrock Guardrails PII types; every PII value that
    a template inserts (including incidental ones such as a name next to a
    phone number) is labelled.

negatives(seed=1234, n=80) -> list[dict]
    Texts without PII (entities == []) that contain look-alikes: order,
    invoice and tracking numbers, 16-digit numbers failing Luhn, dates,
    times, money, percentages, versions, ISBNs, SKUs, product and place
    names, and sentences about password resets, login pages, etc.

Labelling conventions
---------------------
* NAME: the person's name only (no "Mr", "Dr." ...); a middle initial and
  the "Surname, Given" form are part of the span.
* AGE: the number plus its unit when one is written ("34 years",
  "18 months", "34yo", "34 yrs"); otherwise just the number.  A trailing
  "old" is not part of the span.
* ADDRESS: the complete postal address (may span several lines).
* All other types: exactly the value, without surrounding cue words,
  quotes, brackets or sentence punctuation.

Run `python3 pii_heldout.py` for counts, samples and self-checks.
Standard library only.
"""

from __future__ import annotations

import ipaddress
import random
import re
import string

__all__ = ["generate", "negatives", "PII_TYPES"]

PII_TYPES = [
    "ADDRESS", "AGE", "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "CA_HEALTH_NUMBER",
    "CA_SOCIAL_INSURANCE_NUMBER", "CREDIT_DEBIT_CARD_CVV",
    "CREDIT_DEBIT_CARD_EXPIRY", "CREDIT_DEBIT_CARD_NUMBER", "DRIVER_ID",
    "EMAIL", "INTERNATIONAL_BANK_ACCOUNT_NUMBER", "IP_ADDRESS",
    "LICENSE_PLATE", "MAC_ADDRESS", "NAME", "PASSWORD", "PHONE", "PIN",
    "SWIFT_CODE", "UK_NATIONAL_HEALTH_SERVICE_NUMBER",
    "UK_NATIONAL_INSURANCE_NUMBER", "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER",
    "URL", "USERNAME", "US_BANK_ACCOUNT_NUMBER", "US_BANK_ROUTING_NUMBER",
    "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER", "US_PASSPORT_NUMBER",
    "US_SOCIAL_SECURITY_NUMBER", "VEHICLE_IDENTIFICATION_NUMBER",
]

# ---------------------------------------------------------------------------
# Name lists (ASCII transliterations; several double as ordinary words)
# ---------------------------------------------------------------------------

_FEMALE = [
    "Olivia", "Grace", "Hope", "Rose", "Summer", "April", "June", "Faith",
    "Joy", "Dawn", "Amber", "Victoria", "Margaret", "Chloe", "Brooke",
    "Penny", "Lucia", "Valentina", "Guadalupe", "Ximena", "Xochitl", "Rocio",
    "Mei", "Xiaoling", "Sakura", "Aiko", "Seo-yeon", "Priya", "Ananya",
    "Lakshmi", "Aditi", "Fatima", "Layla", "Noor", "Ngozi", "Thandiwe",
    "Amara", "Wanjiru", "Zanele", "Olga", "Katarzyna", "Agnieszka", "Ingrid",
    "Sigrid", "Dagny", "Ebba", "Saoirse", "Siobhan", "Niamh", "Eluned",
    "Greta", "Amelie", "Mathilde", "Giulia", "Eleni", "Ines", "Linh",
    "Huong", "Maricel", "Moana", "Noa", "Yael", "Elif", "Shirin", "Precious",
]
_MALE = [
    "James", "Will", "Mark", "Jack", "Hunter", "Chase", "Bill", "Art",
    "Ethan", "Bartholomew", "Percival", "Ebenezer", "Alejandro", "Mateo",
    "Jose", "Santiago", "Wei", "Jian", "Zhiwei", "Haruto", "Kenji", "Min-jun",
    "Arjun", "Rohan", "Venkatesh", "Omar", "Yusuf", "Khalid", "Chidi",
    "Oluwaseun", "Kwame", "Abebe", "Kofi", "Dmitri", "Zbigniew", "Milos",
    "Bjorn", "Soren", "Ciaran", "Tadhg", "Heinrich", "Theo", "Lorenzo",
    "Yannis", "Joao", "Minh", "Bao", "Jomar", "Tane", "Avi", "Emre",
    "Dariush", "Guy", "Rich",
]
_UNISEX = ["Sunny", "River", "Yuki", "Ji-woo", "Gurpreet", "Yan", "Sky",
           "Kai", "Robin", "Ashley"]
FIRST_NAMES = _FEMALE + _MALE + _UNISEX

SURNAMES = [
    "Smith", "Baker", "King", "Young", "Brown", "White", "Green", "Rice",
    "Park", "Stone", "Wood", "Fox", "Bird", "Hill", "Law", "Love", "Cook",
    "Bell", "Mason", "Moody", "Johnson", "Williams", "O'Brien", "McAllister",
    "Fitzgerald", "Garcia", "Rodriguez", "Hernandez", "Fernandez-Lopez",
    "de la Cruz", "Gonzalez", "Castillo", "Nguyen", "Tran", "Pham", "Le",
    "Li", "Wang", "Zhang", "Chen", "Liu", "Huang", "Yamamoto", "Tanaka",
    "Watanabe", "Suzuki", "Kim", "Lee", "Choi", "Patel", "Sharma", "Iyer",
    "Reddy", "Chatterjee", "Venkataraman", "Singh", "Khan", "Al-Farsi",
    "Haddad", "Mansour", "Abdullah", "Okafor", "Adeyemi", "Mensah",
    "Diallo", "Kamau", "Tesfaye", "Ndlovu", "Kowalski", "Nowak",
    "Wisniewski", "Petrov", "Ivanova", "Novak", "Horvat", "Jovanovic",
    "Andersson", "Johansson", "Lindqvist", "Hansen", "Nielsen", "Muller",
    "Schmidt", "Becker", "Schneider", "Dubois", "Lefevre", "Moreau",
    "Rossi", "Bianchi", "Esposito", "Silva", "Santos", "Oliveira",
    "Papadopoulos", "Georgiou", "Cohen", "Levi", "Yilmaz", "Demir",
    "Hosseini", "Rahimi", "van der Berg", "Janssen", "de Vries", "Murphy",
    "Kelly", "Byrne", "Nakamura", "Kaur", "Dlamini", "Mwangi", "Oyelaran",
    "Featherstonehaugh", "Ramirez", "Cruz", "Reyes", "Mahlangu", "Sorensen",
    "Frost", "Winter", "Hart", "Noble",
]

# ---------------------------------------------------------------------------
# Checksums / validators
# ---------------------------------------------------------------------------


def _digits(s: str) -> str:
    return "".join(ch for ch in s if ch.isdigit())


def luhn_ok(num: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(num)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _luhn_complete(partial: str) -> str:
    for c in "0123456789":
        if luhn_ok(partial + c):
            return partial + c
    raise AssertionError("unreachable")


def iban_ok(iban: str) -> bool:
    s = iban.replace(" ", "")
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]+", s):
        return False
    lengths = {"DE": 22, "GB": 22, "FR": 27, "ES": 24, "NL": 18, "BE": 16,
               "CH": 21, "IE": 22}
    if lengths.get(s[:2]) != len(s):
        return False
    r = s[4:] + s[:4]
    return int("".join(str(int(ch, 36)) for ch in r)) % 97 == 1


def _iban_from_bban(cc: str, bban: str) -> str:
    r = bban + cc + "00"
    chk = 98 - int("".join(str(int(ch, 36)) for ch in r)) % 97
    return f"{cc}{chk:02d}{bban}"


def _es_dc(ten: str) -> str:
    w = [1, 2, 4, 8, 5, 10, 9, 7, 3, 6]
    v = 11 - sum(int(a) * b for a, b in zip(ten, w)) % 11
    return str({11: 0, 10: 1}.get(v, v))


def _fr_rib_key(bank: str, branch: str, account: str) -> str:
    return f"{97 - ((89 * int(bank) + 15 * int(branch) + 3 * int(account)) % 97):02d}"


def iban_national_ok(iban: str) -> bool:
    """Extra national check digits for the countries that have them."""
    s = iban.replace(" ", "")
    cc, b = s[:2], s[4:]
    if cc == "FR":
        return _fr_rib_key(b[0:5], b[5:10], b[10:21]) == b[21:23]
    if cc == "ES":
        return (_es_dc("00" + b[0:8]) == b[8]) and (_es_dc(b[10:20]) == b[9])
    if cc == "BE":
        r = int(b[:10]) % 97
        return f"{r or 97:02d}" == b[10:12]
    if cc == "NL":
        acc = b[4:]
        return sum(int(d) * (10 - i) for i, d in enumerate(acc)) % 11 == 0
    return True


def aba_ok(rtn: str) -> bool:
    if not re.fullmatch(r"\d{9}", rtn):
        return False
    d = [int(c) for c in rtn]
    s = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8])
    pfx = int(rtn[:2])
    return s % 10 == 0 and (0 <= pfx <= 12 or 21 <= pfx <= 32 or 61 <= pfx <= 72 or pfx == 80)


def nhs_ok(num: str) -> bool:
    d = _digits(num)
    if len(d) != 10:
        return False
    s = sum(int(d[i]) * (10 - i) for i in range(9))
    c = 11 - s % 11
    if c == 11:
        c = 0
    return c != 10 and c == int(d[9])


_VIN_MAP = dict(zip("ABCDEFGHJKLMNPRSTUVWXYZ",
                    [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9]))
_VIN_W = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]
_VIN_ALPHA = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"


def _vin_check(vin: str) -> str:
    s = sum((int(c) if c.isdigit() else _VIN_MAP[c]) * w for c, w in zip(vin, _VIN_W))
    r = s % 11
    return "X" if r == 10 else str(r)


def vin_ok(vin: str) -> bool:
    return (len(vin) == 17 and all(c in _VIN_ALPHA for c in vin)
            and vin[8] == _vin_check(vin))


def ssn_ok(s: str) -> bool:
    d = _digits(s)
    if len(d) != 9:
        return False
    a, g, n = int(d[:3]), int(d[3:5]), int(d[5:])
    return 0 < a < 900 and a != 666 and g != 0 and n != 0


def _itin_group_ok(g: int) -> bool:
    return 50 <= g <= 65 or 70 <= g <= 88 or 90 <= g <= 92 or 94 <= g <= 99


def itin_ok(s: str) -> bool:
    d = _digits(s)
    return len(d) == 9 and d[0] == "9" and _itin_group_ok(int(d[3:5]))


_NINO_FIRST = "ABCEGHJKLMNOPRSTWXYZ"          # not D F I Q U V
_NINO_SECOND = "ABCEGHJKLMNPRSTWXYZ"          # not D F I O Q U V
_NINO_BAD = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}


def nino_ok(s: str) -> bool:
    t = s.replace(" ", "")
    return bool(re.fullmatch(r"[A-Z]{2}\d{6}[A-D]", t)) and t[0] in _NINO_FIRST \
        and t[1] in _NINO_SECOND and t[:2] not in _NINO_BAD


def _utr_check(nine: str) -> str:
    w = [6, 7, 8, 9, 10, 5, 4, 3, 2]
    r = sum(int(a) * b for a, b in zip(nine, w)) % 11
    return "21987654321"[r]


def utr_ok(s: str) -> bool:
    d = _digits(s)
    return len(d) == 10 and _utr_check(d[1:]) == d[0]


def sin_ok(s: str) -> bool:
    d = _digits(s)
    return len(d) == 9 and d[0] not in "08" and luhn_ok(d)


def _bc_phn_check(d: str) -> str | None:
    w = [2, 4, 8, 5, 10, 9, 7, 3]
    c = 11 - sum(int(a) * b for a, b in zip(d[1:9], w)) % 11
    return None if c >= 10 else str(c)


def ca_health_ok(s: str) -> bool:
    t = s.replace(" ", "").replace("-", "")
    if re.fullmatch(r"[A-Z]{4}\d{8}", t):                      # Quebec RAMQ
        mm = int(t[6:8])
        mm = mm - 50 if mm > 50 else mm
        return 1 <= mm <= 12 and 1 <= int(t[8:10]) <= 31
    if re.fullmatch(r"9\d{9}", t):                             # BC PHN, mod 11
        return _bc_phn_check(t) == t[9]
    if re.fullmatch(r"[1-8]\d{9}", t):                         # Ontario, Luhn
        return luhn_ok(t)
    return False


def card_ok(s: str) -> bool:
    d = _digits(s)
    if not luhn_ok(d):
        return False
    if d[0] == "4":
        return len(d) == 16
    if 51 <= int(d[:2]) <= 55 or 2221 <= int(d[:4]) <= 2720:
        return len(d) == 16
    if d[:2] in ("34", "37"):
        return len(d) == 15
    if d[:4] == "6011" or d[:2] == "65" or 644 <= int(d[:3]) <= 649:
        return len(d) == 16
    if 3528 <= int(d[:4]) <= 3589:
        return len(d) == 16
    if d[:2] == "36":
        return len(d) == 14
    return False


def isbn13_ok(s: str) -> bool:
    d = _digits(s)
    return len(d) == 13 and sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(d)) % 10 == 0


# ---------------------------------------------------------------------------
# Value generators
# ---------------------------------------------------------------------------

_U = string.ascii_uppercase
_L = string.ascii_lowercase
_D = string.digits


def _rs(rng, alphabet, n):
    return "".join(rng.choice(alphabet) for _ in range(n))


class _Person:
    def __init__(self, rng: random.Random):
        g = rng.random()
        if g < 0.45:
            self.first, self.gender = rng.choice(_FEMALE), "F"
        elif g < 0.9:
            self.first, self.gender = rng.choice(_MALE), "M"
        else:
            self.first, self.gender = rng.choice(_UNISEX), rng.choice("FM")
        self.last = rng.choice(SURNAMES)
        self.middle = rng.choice(_U.replace("Q", "").replace("X", "")) if rng.random() < 0.15 else ""
        self.full = f"{self.first} {self.middle}. {self.last}" if self.middle else f"{self.first} {self.last}"
        self.rev = f"{self.last}, {self.first}"
        if self.gender == "F":
            self.title = rng.choice(["Ms", "Mrs", "Ms.", "Dr", "Dr."])
        else:
            self.title = rng.choice(["Mr", "Mr.", "Dr", "Dr."])
        self.birth_year = rng.randint(1950, 2004)


def _clean(s: str) -> str:
    return re.sub(r"[^a-z]", "", s.lower())


_FREE_MAIL = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.co.uk", "icloud.com",
              "proton.me", "aol.com", "gmx.de", "yahoo.ca", "live.com"]
_WORK_MAIL = ["brightwave.io", "northwind-logistics.com", "acmeplumbing.net",
              "harbourdental.co.uk", "kestrel-analytics.com", "mapleleafcpa.ca",
              "bluefinch.org", "ridgeline-realty.com", "uni-leipzig.de", "tessera.ai"]


def _email(rng, p: _Person) -> str:
    f, l = _clean(p.first), _clean(p.last)
    style = rng.randrange(7)
    if style == 0:
        local = f"{f}.{l}"
    elif style == 1:
        local = f"{f[0]}{l}"
    elif style == 2:
        local = f"{f}_{l}{rng.randint(1, 99)}"
    elif style == 3:
        local = f"{f}{p.birth_year % 100:02d}"
    elif style == 4:
        local = f"{l}.{f[0]}"
    elif style == 5:
        local = f"{f}+{rng.choice(['shop', 'bills', 'news', 'amzn'])}"
    else:
        local = f"{f}.{l}{rng.randint(1, 9)}"
    dom = rng.choice(_WORK_MAIL if rng.random() < 0.35 else _FREE_MAIL)
    return f"{local}@{dom}"


_HANDLE_WORDS = ["night", "owl", "river", "pixel", "storm", "tiger", "lucky",
                 "shadow", "blue", "maple", "rocket", "frost", "quiet", "wolf",
                 "mango", "ember", "cosmic", "turbo", "sable", "kiwi"]


def _username(rng, p: _Person) -> str:
    f, l = _clean(p.first), _clean(p.last)
    style = rng.randrange(6)
    if style == 0:
        return f"{f[0]}{l}{rng.randint(1, 99)}"
    if style == 1:
        return f"{f}.{l}"
    if style == 2:
        return f"{f}_{l[:3]}"
    if style == 3:
        return f"{rng.choice(_HANDLE_WORDS)}_{rng.choice(_HANDLE_WORDS)}{rng.randint(1, 999)}"
    if style == 4:
        return f"{rng.choice(_HANDLE_WORDS).capitalize()}{rng.choice(_HANDLE_WORDS).capitalize()}{p.birth_year}"
    return f"{l}{f[0]}{p.birth_year % 100:02d}"


_PW_WORDS = ["Sunflower", "Dragon", "Monkey", "Football", "Princess", "Summer",
             "Winter", "Coffee", "Charlie", "Shadow", "Bluebird", "Pancake",
             "Tiger", "Rainbow", "Galaxy", "Banana", "Hockey", "Maverick"]
_PW_SYM = "!@#$%^&*-_+=?"


def _password(rng) -> str:
    style = rng.randrange(5)
    if style == 0:
        return f"{rng.choice(_PW_WORDS)}{rng.randint(1, 2024)}{rng.choice('!#$?*')}"
    if style == 1:
        w = rng.choice(_PW_WORDS).lower()
        w = w.replace("a", "@").replace("o", "0").replace("e", "3").replace("s", "$")
        return w[0].upper() + w[1:] + str(rng.randint(10, 99))
    if style == 2:
        n = rng.randint(12, 18)
        while True:
            pw = _rs(rng, _U + _L + _D + _PW_SYM, n)
            if (any(c in _D for c in pw) and any(c in _PW_SYM for c in pw)
                    and pw[-1] not in "-_"):
                return pw
    if style == 3:
        words = rng.sample(["purple", "canoe", "tiger", "staple", "orbit", "velvet",
                            "kettle", "lantern", "meadow", "cactus", "piano"], 3)
        return "-".join(words) + "-" + str(rng.randint(1, 99))
    return f"{rng.choice(_PW_WORDS).lower()}{rng.choice(_PW_WORDS)}{rng.randint(100, 999)}"


def _pin(rng) -> str:
    n = 6 if rng.random() < 0.2 else 4
    while True:
        p = _rs(rng, _D, n)
        if len(set(p)) > 1:
            return p


_US_AREAS = ["212", "213", "312", "415", "503", "617", "646", "702", "713",
             "206", "305", "404", "512", "614", "720", "808", "919", "971",
             "602", "470", "929", "872"]


_CA_AREAS = ["416", "647", "613", "604", "778", "514", "438", "403", "587", "902", "204", "306"]


def _phone_us(rng, areas=None) -> str:
    a = rng.choice(areas or _US_AREAS)
    while True:
        ex = str(rng.randint(200, 999))
        if ex[1:] != "11" and ex != "555":
            break
    ln = _rs(rng, _D, 4)
    f = rng.randrange(7)
    return [f"({a}) {ex}-{ln}", f"{a}-{ex}-{ln}", f"{a}.{ex}.{ln}",
            f"+1 {a} {ex} {ln}", f"+1-{a}-{ex}-{ln}", f"{a}{ex}{ln}",
            f"1 ({a}) {ex}-{ln}"][f]


def _phone_uk(rng) -> str:
    f = rng.randrange(5)
    mob = "7" + rng.choice("134589") + _rs(rng, _D, 8)
    if f == 0:
        return f"0{mob[:4]} {mob[4:]}"
    if f == 1:
        return f"+44 {mob[:4]} {mob[4:]}"
    if f == 2:
        return f"0{mob}"
    ldn = "7" + _rs(rng, _D, 3) + " " + _rs(rng, _D, 4)
    if f == 3:
        return f"020 {ldn}"
    return f"+44 (0)20 {ldn}"


def _phone_intl(rng) -> str:
    f = rng.randrange(5)
    if f == 0:
        return f"+49 30 {_rs(rng, _D, 8)}"
    if f == 1:
        return "+33 6 " + " ".join(_rs(rng, _D, 2) for _ in range(4))
    if f == 2:
        return f"+61 4{_rs(rng, _D, 2)} {_rs(rng, _D, 3)} {_rs(rng, _D, 3)}"
    if f == 3:
        return f"+91 9{_rs(rng, _D, 4)} {_rs(rng, _D, 5)}"
    return f"+52 55 {_rs(rng, _D, 4)} {_rs(rng, _D, 4)}"


def _phone(rng) -> str:
    r = rng.random()
    return _phone_us(rng) if r < 0.5 else _phone_uk(rng) if r < 0.8 else _phone_intl(rng)


_STREETS = ["Maple", "Oak", "Cedar", "Elm", "Pine", "Lakeview", "Highland",
            "Church", "Station", "Victoria", "King", "Queen", "Mill", "Park",
            "Sunset", "Riverside", "Willow", "Birch", "Harbour", "Meadow",
            "Chestnut", "Orchard", "Forest", "Hawthorn", "Lincoln", "Jefferson"]
_US_CITIES = [("Springfield", "IL", "627"), ("Austin", "TX", "787"),
              ("Portland", "OR", "972"), ("Columbus", "OH", "432"),
              ("Denver", "CO", "802"), ("Madison", "WI", "537"),
              ("Raleigh", "NC", "276"), ("Tucson", "AZ", "857"),
              ("Albany", "NY", "122"), ("Sacramento", "CA", "958"),
              ("Boise", "ID", "837"), ("Omaha", "NE", "681"),
              ("Savannah", "GA", "314"), ("Burlington", "VT", "054"),
              ("Fairbanks", "AK", "997"), ("Brooklyn", "NY", "112"),
              ("San Jose", "CA", "951"), ("Ann Arbor", "MI", "481")]
_UK_TOWNS = [("M", "Manchester"), ("B", "Birmingham"), ("LS", "Leeds"),
             ("EH", "Edinburgh"), ("G", "Glasgow"), ("CF", "Cardiff"),
             ("BS", "Bristol"), ("NE", "Newcastle upon Tyne"), ("L", "Liverpool"),
             ("OX", "Oxford"), ("CB", "Cambridge"), ("SW", "London"),
             ("N", "London"), ("BT", "Belfast"), ("YO", "York"), ("NR", "Norwich")]
_CA_CITIES = [("Ottawa", "ON", "K"), ("Toronto", "ON", "M"), ("Vancouver", "BC", "V"),
              ("Calgary", "AB", "T"), ("Montreal", "QC", "H"), ("Halifax", "NS", "B"),
              ("Winnipeg", "MB", "R"), ("Regina", "SK", "S"), ("St. John's", "NL", "A")]
_PC_LET = "ABCEGHJKLMNPRSTVWXYZ"          # Canadian postal letters (no D F I O Q U)
_UK_INWARD = "ABDEFGHJLNPQRSTUWXYZ"        # no C I K M O V


def _addr_us(rng, multiline=False) -> str:
    city, st, zp = rng.choice(_US_CITIES)
    num = rng.randint(3, 9899)
    street = f"{rng.choice(_STREETS)} {rng.choice(['St', 'Ave', 'Blvd', 'Dr', 'Ln', 'Rd', 'Way', 'Ct', 'Street', 'Avenue'])}"
    unit = rng.choice(["", "", "", f"Apt {rng.randint(1, 30)}{rng.choice('ABCD')}",
                       f"Suite {rng.randint(100, 950)}", f"Unit {rng.randint(1, 40)}"])
    z = zp + _rs(rng, _D, 2)
    if rng.random() < 0.2:
        z += "-" + _rs(rng, _D, 4)
    line1 = f"{num} {street}" + (f", {unit}" if unit else "")
    sep = "\n" if multiline else ", "
    return f"{line1}{sep}{city}, {st} {z}"


def _addr_uk(rng, multiline=False) -> str:
    area, town = rng.choice(_UK_TOWNS)
    pc = f"{area}{rng.randint(1, 20)} {rng.randint(1, 9)}{_rs(rng, _UK_INWARD, 2)}"
    street = f"{rng.choice(_STREETS)} {rng.choice(['Road', 'Street', 'Lane', 'Avenue', 'Close', 'Crescent', 'Gardens', 'Terrace'])}"
    num = rng.randint(1, 240)
    flat = f"Flat {rng.randint(1, 24)}" if rng.random() < 0.25 else ""
    if multiline:
        parts = ([flat] if flat else []) + [f"{num} {street}", town, pc]
        return "\n".join(parts)
    return (f"{flat}, " if flat else "") + f"{num} {street}, {town} {pc}"


def _addr_ca(rng, multiline=False) -> str:
    city, prov, fl = rng.choice(_CA_CITIES)
    pc = f"{fl}{rng.randint(0, 9)}{rng.choice(_PC_LET)} {rng.randint(0, 9)}{rng.choice(_PC_LET)}{rng.randint(0, 9)}"
    num = rng.randint(10, 9800)
    if prov == "QC" and rng.random() < 0.6:
        street = f"rue {rng.choice(['Sainte-Catherine O', 'Saint-Denis', 'Sherbrooke E', 'Laurier'])}"
    else:
        street = f"{rng.choice(_STREETS)} {rng.choice(['Street', 'Avenue', 'Road', 'Drive', 'Crescent'])}"
    unit = rng.choice(["", "", f"Unit {rng.randint(100, 2400)}"])
    line1 = (f"{unit}-" if unit and rng.random() < 0.5 else "") + f"{num} {street}"
    if unit and not line1.startswith("Unit"):
        line1 += f", {unit}"
    sep = "\n" if multiline else ", "
    return f"{line1}{sep}{city}, {prov} {pc}" if not multiline else f"{line1}\n{city} {prov}  {pc}"


def _addr(rng) -> str:
    return rng.choice([_addr_us, _addr_us, _addr_uk, _addr_ca])(rng)


def _addr_ml(rng) -> str:
    return rng.choice([_addr_us, _addr_uk, _addr_ca])(rng, multiline=True)


def _aws_akid(rng) -> str:
    return rng.choice(["AKIA", "AKIA", "AKIA", "ASIA"]) + _rs(rng, _U + "234567", 16)


def _aws_secret(rng) -> str:
    while True:
        s = _rs(rng, _U + _L + _D + "/+", 40)
        if s[0] not in "/+" and sum(c.isdigit() for c in s) >= 3:
            return s


def _cahn_on(rng) -> str:
    d = _luhn_complete(str(rng.randint(1, 8)) + _rs(rng, _D, 8))
    return rng.choice([f"{d[:4]}-{d[4:7]}-{d[7:]}", f"{d[:4]} {d[4:7]} {d[7:]}", d])


def _cahn_bc(rng) -> str:
    while True:
        d = "9" + _rs(rng, _D, 8)
        c = _bc_phn_check(d)
        if c is not None:
            d += c
            return rng.choice([f"{d[:4]} {d[4:7]} {d[7:]}", d])


def _cahn_qc(rng, p: _Person | None = None) -> str:
    last = _clean(p.last).upper() if p else _rs(rng, _U, 3)
    last = (last + "XXX")[:3]
    first = (_clean(p.first).upper()[:1] if p else rng.choice(_U))
    yy = (p.birth_year if p else rng.randint(1950, 2004)) % 100
    mm = rng.randint(1, 12) + (50 if p and p.gender == "F" else 0)
    dd = rng.randint(1, 28)
    s = f"{last}{first}{yy:02d}{mm:02d}{dd:02d}{rng.randint(10, 99)}"
    return rng.choice([f"{s[:4]} {s[4:8]} {s[8:]}", s])


def _sin(rng) -> str:
    d = _luhn_complete(rng.choice("12345679") + _rs(rng, _D, 7))
    return rng.choice([f"{d[:3]}-{d[3:6]}-{d[6:]}", f"{d[:3]} {d[3:6]} {d[6:]}", d])


def _card_digits(rng, kind=None) -> str:
    kind = kind or rng.choice(["visa", "visa", "visa", "mc", "mc", "mc2", "amex",
                               "disc", "jcb", "diners"])
    if kind == "visa":
        pre, n = rng.choice(["4147", "4266", "4388", "4640", "4815", "4921", "4539", "4024"]), 16
    elif kind == "mc":
        pre, n = str(rng.randint(51, 55)), 16
    elif kind == "mc2":
        pre, n = str(rng.randint(2221, 2720)), 16
    elif kind == "amex":
        pre, n = rng.choice(["34", "37"]), 15
    elif kind == "disc":
        pre, n = rng.choice(["6011", "65", str(rng.randint(644, 649))]), 16
    elif kind == "jcb":
        pre, n = str(rng.randint(3528, 3589)), 16
    else:
        pre, n = "36", 14
    return _luhn_complete(pre + _rs(rng, _D, n - len(pre) - 1))


def _fmt_card(rng, d: str) -> str:
    f = rng.randrange(3)
    if f == 2:
        return d
    sep = " " if f == 0 else "-"
    if len(d) == 15:
        return sep.join([d[:4], d[4:10], d[10:]])
    if len(d) == 14:
        return sep.join([d[:4], d[4:10], d[10:]])
    return sep.join(d[i:i + 4] for i in range(0, 16, 4))


def _card(rng) -> str:
    return _fmt_card(rng, _card_digits(rng))


def _card_amex(rng) -> str:
    return _fmt_card(rng, _card_digits(rng, "amex"))


def _expiry(rng) -> str:
    m, y = rng.randint(1, 12), rng.randint(2025, 2032)
    mon = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][m - 1]
    return rng.choice([f"{m:02d}/{y % 100:02d}", f"{m:02d}/{y % 100:02d}", f"{m:02d}/{y}",
                       f"{m}/{y % 100:02d}", f"{m:02d}-{y % 100:02d}", f"{mon} {y}"])


def _dl_ca(rng):
    return rng.choice(_U) + _rs(rng, _D, 7)


def _dl_ny(rng):
    d = _rs(rng, "123456789", 1) + _rs(rng, _D, 8)
    return rng.choice([f"{d[:3]} {d[3:6]} {d[6:]}", d])


def _dl_fl(rng):
    d = _rs(rng, _D, 12)
    return f"{rng.choice(_U)}{d[:3]}-{d[3:6]}-{d[6:8]}-{d[8:11]}-{d[11]}"


def _dl_il(rng):
    d = _rs(rng, _D, 11)
    return f"{rng.choice(_U)}{d[:3]}-{d[3:7]}-{d[7:]}"


def _dl_tx(rng):
    return rng.choice("1234") + _rs(rng, _D, 7)


def _dl_wa(rng):
    return "WDL" + _rs(rng, _U + _D, 9)


def _dl_on(rng):
    d = _rs(rng, _D, 14)
    return f"{rng.choice(_U)}{d[:4]}-{d[4:9]}-{d[9:]}"


def _dl_uk(rng, p: _Person) -> str:
    sur = (_clean(p.last).upper() + "99999")[:5]
    y = p.birth_year
    m = rng.randint(1, 12) + (50 if p.gender == "F" else 0)
    init = _clean(p.first).upper()[0] + (p.middle or "9")
    return f"{sur}{(y // 10) % 10}{m:02d}{rng.randint(1, 28):02d}{y % 10}{init}9{_rs(rng, _U, 2)}"


def _dl_any(rng):
    return rng.choice([_dl_ca, _dl_ny, _dl_fl, _dl_il, _dl_tx, _dl_wa, _dl_on])(rng)


def _iban(rng, cc=None) -> str:
    cc = cc or rng.choice(["DE", "DE", "GB", "GB", "FR", "ES", "NL", "BE", "CH", "IE"])
    if cc == "DE":
        bban = rng.choice(["37040044", "10070000", "50010517", "12030000", "20041133", "70150000"]) + _rs(rng, _D, 10)
    elif cc == "GB":
        bank, sc = rng.choice([("NWBK", "60"), ("BARC", "20"), ("LOYD", "30"), ("HBUK", "40"), ("MIDL", "40")])
        bban = bank + sc + _rs(rng, _D, 4) + _rs(rng, _D, 8)
    elif cc == "IE":
        bank, sc = rng.choice([("AIBK", "93"), ("BOFI", "90")])
        bban = bank + sc + _rs(rng, _D, 4) + _rs(rng, _D, 8)
    elif cc == "FR":
        bank = rng.choice(["30004", "30003", "20041", "10278", "30002"])
        branch, acc = _rs(rng, _D, 5), _rs(rng, _D, 11)
        bban = bank + branch + acc + _fr_rib_key(bank, branch, acc)
    elif cc == "ES":
        bank = rng.choice(["2100", "0049", "0182", "0081", "2038"])
        branch, acc = _rs(rng, _D, 4), _rs(rng, _D, 10)
        bban = bank + branch + _es_dc("00" + bank + branch) + _es_dc(acc) + acc
    elif cc == "NL":
        while True:
            d9 = _rs(rng, _D, 9)
            last = (-sum(int(d) * (10 - i) for i, d in enumerate(d9))) % 11
            if last < 10:
                break
        bban = rng.choice(["ABNA", "INGB", "RABO", "SNSB", "TRIO", "KNAB"]) + d9 + str(last)
    elif cc == "BE":
        ten = rng.choice(["001", "310", "363", "068", "737"]) + _rs(rng, _D, 7)
        bban = ten + f"{int(ten) % 97 or 97:02d}"
    else:  # CH
        bban = rng.choice(["00230", "00762", "04835", "00700"]) + _rs(rng, _D, 12)
    iban = _iban_from_bban(cc, bban)
    if rng.random() < 0.55:
        return " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))
    return iban


def _ip4(rng) -> str:
    r = rng.random()
    if r < 0.25:
        return f"192.168.{rng.randint(0, 20)}.{rng.randint(2, 254)}"
    if r < 0.4:
        return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    while True:
        a = rng.randint(11, 223)
        if a not in (100, 127, 169, 172, 192):
            return f"{a}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _ip6(rng) -> str:
    pre = rng.choice(["2001:db8", "2a02:c7f", "2600:1700", "2a01:4f8", "fe80:"])
    groups = [format(rng.randint(0, 0xFFFF), "x") for _ in range(rng.choice([3, 4, 6]))]
    if pre.endswith(":"):
        return f"{pre}:{':'.join(groups[:4])}"
    if len(groups) == 6:
        return f"{pre}:{':'.join(groups)}"
    return f"{pre}:{groups[0]}::{':'.join(groups[1:])}"


def _ip(rng) -> str:
    return _ip6(rng) if rng.random() < 0.15 else _ip4(rng)


def _plate_us(rng) -> str:
    f = rng.randrange(5)
    if f == 0:                                    # California
        return f"{rng.randint(4, 9)}{_rs(rng, 'ABCDEFGHJKLMNPRSTUVWXYZ', 3)}{_rs(rng, _D, 3)}"
    if f == 1:                                    # New York / Texas style
        return f"{_rs(rng, 'ABCDEFGHJKLMNPRSTUVWXYZ', 3)}-{_rs(rng, _D, 4)}"
    if f == 2:
        return f"{_rs(rng, 'ABCDEFGHJKLMNPRSTUVWXYZ', 3)} {_rs(rng, _D, 4)}"
    if f == 3:                                    # Ontario
        return f"{_rs(rng, 'ABCDEFGHJKLMNPRSTVWXYZ', 4)} {_rs(rng, _D, 3)}"
    return f"{_rs(rng, _D, 3)} {_rs(rng, 'ABCDEFGHJKLMNPRSTUVWXYZ', 3)}"


def _plate_uk(rng) -> str:
    age = rng.choice(["15", "65", "17", "67", "19", "69", "21", "71", "22", "72", "23", "73", "24", "74"])
    area = rng.choice(["AB", "BD", "CX", "DL", "EF", "GK", "HN", "KM", "LV", "MA", "NX", "OU", "PN", "RV", "SA", "WP", "YR"])
    s = f"{area}{age} {_rs(rng, 'ABCDEFGHJKLMNOPRSTUVWXY', 3)}"
    return s if rng.random() < 0.7 else s.replace(" ", "")


def _plate(rng) -> str:
    return _plate_uk(rng) if rng.random() < 0.35 else _plate_us(rng)


_OUIS = ["3C:22:FB", "F4:5C:89", "00:50:56", "B8:27:EB", "DC:A6:32", "00:1B:63",
         "AC:DE:48", "00:0C:29", "70:85:C2", "E4:5F:01", "A4:83:E7", "00:1E:C2"]


def _mac(rng) -> str:
    octs = rng.choice(_OUIS).split(":") + [f"{rng.randint(0, 255):02X}" for _ in range(3)]
    f = rng.randrange(5)
    if f == 0:
        return ":".join(octs)
    if f == 1:
        return ":".join(octs).lower()
    if f == 2:
        return "-".join(octs)
    if f == 3:
        h = "".join(octs).lower()
        return f"{h[:4]}.{h[4:8]}.{h[8:]}"
    return "-".join(octs).lower()


_BICS = [("DEUTDEFF", "Deutsche Bank"), ("COBADEFFXXX", "Commerzbank"),
         ("CHASUS33", "JPMorgan Chase"), ("BOFAUS3N", "Bank of America"),
         ("CITIUS33", "Citibank"), ("WFBIUS6S", "Wells Fargo"),
         ("HSBCGB2L", "HSBC"), ("BARCGB22", "Barclays"), ("NWBKGB2L", "NatWest"),
         ("LOYDGB2L", "Lloyds"), ("BNPAFRPP", "BNP Paribas"),
         ("SOGEFRPP", "Societe Generale"), ("INGBNL2A", "ING"),
         ("ABNANL2A", "ABN AMRO"), ("RABONL2U", "Rabobank"),
         ("UBSWCHZH80A", "UBS"), ("BKCHCNBJ", "Bank of China"),
         ("MHCBJPJT", "Mizuho"), ("ROYCCAT2", "RBC Royal Bank"),
         ("TDOMCATTTOR", "TD Bank"), ("AIBKIE2D", "AIB"),
         ("BOFIIE2D", "Bank of Ireland"), ("DNBANOKK", "DNB"),
         ("NDEASESS", "Nordea"), ("CAIXESBB", "CaixaBank"),
         ("BSCHESMM", "Santander"), ("GEBABEBB", "BNP Paribas Fortis"),
         ("ANZBAU3M", "ANZ"), ("DBSSSGSG", "DBS Bank")]


def _swift_pair(rng):
    if rng.random() < 0.65:
        return rng.choice(_BICS)
    bank = _rs(rng, _U, 4)
    cc = rng.choice(["DE", "GB", "FR", "US", "CA", "NL", "IT", "ES", "AU", "JP", "SG", "AE"])
    loc = rng.choice(_U + "23456789") + rng.choice(_U + "123456789")
    br = rng.choice(["", "", "XXX", _rs(rng, _U + _D, 3)])
    return bank + cc + loc + br, "the bank"


def _nhs(rng) -> str:
    while True:
        d = rng.choice("4679") + _rs(rng, _D, 8)
        s = sum(int(d[i]) * (10 - i) for i in range(9))
        c = 11 - s % 11
        if c == 11:
            c = 0
        if c == 10:
            continue
        d += str(c)
        return rng.choice([f"{d[:3]} {d[3:6]} {d[6:]}", f"{d[:3]} {d[3:6]} {d[6:]}", d, f"{d[:3]}-{d[3:6]}-{d[6:]}"])


def _nino(rng) -> str:
    while True:
        pre = rng.choice(_NINO_FIRST) + rng.choice(_NINO_SECOND)
        if pre not in _NINO_BAD:
            break
    d = _rs(rng, _D, 6)
    suf = rng.choice("ABCD")
    return rng.choice([f"{pre} {d[:2]} {d[2:4]} {d[4:]} {suf}", f"{pre}{d}{suf}", f"{pre} {d} {suf}"])


def _utr(rng) -> str:
    nine = _rs(rng, _D, 9)
    d = _utr_check(nine) + nine
    return rng.choice([d, d, f"{d[:5]} {d[5:]}"])


_URL_WORDS = ["brightlane", "harbourview", "quickfix", "greenleaf", "pixelforge",
              "northstar", "bluefinch", "kestrel", "tidewater", "oakridge",
              "meridian", "sparrowhill", "copperkettle", "lumen"]
_URL_PATHS = ["orders", "account", "help", "returns", "blog", "docs", "support",
              "products", "invoice", "track", "reset", "careers", "events"]


def _url(rng) -> str:
    host = rng.choice(["www.", "", "shop.", "help.", "app."]) + rng.choice(_URL_WORDS) + \
        rng.choice([".com", ".com", ".co.uk", ".io", ".org", ".net", ".ca", ".de"])
    path = "/".join(rng.sample(_URL_PATHS, rng.randint(0, 2)))
    f = rng.randrange(6)
    tail = ""
    if f == 0:
        tail = f"/{path}/{rng.randint(1000, 999999)}" if path else f"/p/{rng.randint(1000, 999999)}"
    elif f == 1:
        tail = f"/{path}?id={_rs(rng, _L + _D, 8)}&ref=email" if path else "/?utm_source=newsletter"
    elif f == 2:
        tail = f"/{path}" if path else ""
    elif f == 3:
        tail = f"/{path}/" if path else "/"
    elif f == 4:
        tail = f"/{path}#section-{rng.randint(1, 9)}" if path else ""
    else:
        tail = f":{rng.choice([8080, 8443, 3000])}/{path}" if path else ":8080"
    scheme = rng.choice(["https://", "https://", "https://", "http://", ""])
    if not scheme and not host.startswith("www."):
        scheme = "https://"
    return scheme + host + tail


def _acct(rng) -> str:
    n = rng.choice([8, 9, 10, 10, 11, 12, 12, 14, 17])
    d = rng.choice("123456789") + _rs(rng, _D, n - 1)
    if rng.random() < 0.15:
        d = "000" + d[3:]
    return d


_REAL_ABA = ["021000021", "026009593", "121000248", "011000138", "071000013",
             "122000247", "031201360", "322271627", "061000104", "111000614",
             "256074974", "044000037", "091000019", "053000196", "021200339"]
_REAL_ABA = [r for r in _REAL_ABA if aba_ok(r)]


def _routing(rng) -> str:
    if rng.random() < 0.4 and _REAL_ABA:
        return rng.choice(_REAL_ABA)
    while True:
        pfx = rng.choice([f"{i:02d}" for i in list(range(1, 13)) + list(range(21, 33))])
        d = [int(c) for c in pfx + _rs(rng, _D, 6)]
        s = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5])
        r = "".join(map(str, d)) + str((-s) % 10)
        if aba_ok(r):
            return r


def _itin(rng) -> str:
    while True:
        g = rng.randint(50, 99)
        if _itin_group_ok(g):
            break
    d = f"9{rng.randint(0, 99):02d}{g:02d}{rng.randint(1, 9999):04d}"
    return rng.choice([f"{d[:3]}-{d[3:5]}-{d[5:]}", f"{d[:3]}-{d[3:5]}-{d[5:]}", f"{d[:3]} {d[3:5]} {d[5:]}", d])


def _passport(rng) -> str:
    if rng.random() < 0.45:
        return rng.choice("ACEFHKLMNPRSTUVWXZ") + _rs(rng, _D, 8)
    return rng.choice("12345") + _rs(rng, _D, 8)


def _ssn_digits(rng) -> str:
    while True:
        a = rng.randint(1, 899)
        if a != 666:
            break
    return f"{a:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"


def _ssn(rng) -> str:
    d = _ssn_digits(rng)
    return rng.choice([f"{d[:3]}-{d[3:5]}-{d[5:]}", f"{d[:3]}-{d[3:5]}-{d[5:]}", f"{d[:3]} {d[3:5]} {d[5:]}", d])


_WMI = {"1HG": "Honda", "1FT": "Ford", "1G1": "Chevrolet", "2T1": "Toyota",
        "3VW": "Volkswagen", "4T1": "Toyota", "5YJ": "Tesla", "JHM": "Honda",
        "JTD": "Toyota", "KMH": "Hyundai", "WBA": "BMW", "WVW": "Volkswagen",
        "WDD": "Mercedes-Benz", "SAL": "Land Rover", "YV1": "Volvo", "ZFA": "Fiat",
        "1C4": "Jeep", "5NP": "Hyundai", "2HG": "Honda", "JN1": "Nissan"}
_MODELS = {"Honda": ["Civic", "Accord", "CR-V"], "Ford": ["F-150", "Ranger"],
           "Chevrolet": ["Malibu", "Bolt EV"], "Toyota": ["RAV4", "Corolla", "Camry"],
           "Volkswagen": ["Golf", "Jetta", "Tiguan"], "Tesla": ["Model 3", "Model Y"],
           "Hyundai": ["Tucson", "Elantra"], "BMW": ["320i", "X3"],
           "Mercedes-Benz": ["C300", "GLC 300"], "Land Rover": ["Defender", "Discovery Sport"],
           "Volvo": ["XC60", "V60"], "Fiat": ["500", "Panda"], "Jeep": ["Wrangler", "Cherokee"],
           "Nissan": ["Leaf", "Rogue"]}
_VIN_NOIOQ = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"


def _vin(rng, wmi=None, year_code=None) -> str:
    v = (wmi or rng.choice(sorted(_WMI))) + _rs(rng, _VIN_NOIOQ, 5) + "0" + \
        (year_code or rng.choice("EFGHJKLMNPR")) + rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ0123456789") + _rs(rng, _D, 6)
    return v[:8] + _vin_check(v) + v[9:]


def _age(rng):
    return str(rng.randint(16, 93))


# ---- non-PII fillers -------------------------------------------------------

_MONTHS = ["January", "February", "March", "April", "May", "June", "July",
           "August", "September", "October", "November", "December"]


def _date(rng) -> str:
    y, m, d = rng.randint(2022, 2025), rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice([f"{_MONTHS[m - 1]} {d}, {y}", f"{y}-{m:02d}-{d:02d}",
                       f"{d} {_MONTHS[m - 1][:3]} {y}", f"{m}/{d}/{y}", f"{_MONTHS[m - 1][:3]} {d}"])


def _time(rng) -> str:
    h, m = rng.randint(7, 21), rng.choice([0, 15, 30, 45, 5, 50])
    return rng.choice([f"{h:02d}:{m:02d}", f"{(h - 1) % 12 + 1}:{m:02d} {'am' if h < 12 else 'pm'}",
                       f"{(h - 1) % 12 + 1}{'am' if h < 12 else 'pm'}"])


def _ts(rng) -> str:
    return (f"{rng.randint(2023, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            f"{rng.choice(['T', ' '])}{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
            + rng.choice(["Z", "", ".412Z"]))


def _ticket(rng) -> str:
    return rng.choice([f"#{rng.randint(10000, 99999)}", f"CS-{rng.randint(100000, 999999)}",
                       f"INC{rng.randint(1000000, 9999999)}", f"SR-{rng.randint(2023, 2025)}-{rng.randint(1000, 9999)}"])


def _order(rng) -> str:
    return rng.choice([f"#{rng.randint(100000, 9999999)}", f"ORD-{_rs(rng, _U + _D, 6)}",
                       f"{rng.randint(111, 114)}-{rng.randint(1000000, 9999999)}-{rng.randint(1000000, 9999999)}",
                       f"W{rng.randint(10000000, 99999999)}"])


def _amount(rng) -> str:
    v = rng.randint(5, 2500) + rng.choice([0, 0.99, 0.5, 0.25, 0.49])
    cur = rng.choice(["$", "$", "GBP ", "EUR ", "CAD "])
    return f"{cur}{v:,.2f}"


_US_BANKS = ["Chase", "Bank of America", "Wells Fargo", "Citibank", "US Bank", "PNC",
             "Capital One", "TD Bank", "Navy Federal", "my credit union"]


class _Ctx:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.p1 = _Person(rng)
        self.p2 = _Person(rng)
        while self.p2.last == self.p1.last:
            self.p2 = _Person(rng)
        self.swift = _swift_pair(rng)
        cc = self.swift[0][4:6]
        self.iban_cc = cc if cc in ("DE", "GB", "FR", "ES", "NL", "BE", "CH", "IE") else None
        # one vehicle per item so VIN, make/model and year agree
        self.wmi = rng.choice(sorted(_WMI))
        year = rng.randint(2014, 2024)
        make = _WMI[self.wmi]
        self.car = f"{year} {make} {rng.choice(_MODELS[make])}"
        self.vin_year = "EFGHJKLMNPR"[year - 2014]


# slot name -> (entity type or None, generator(ctx) -> str)
_SLOTS = {
    # NAME
    "FULL": ("NAME", lambda c: c.p1.full),
    "FIRST": ("NAME", lambda c: c.p1.first),
    "LAST": ("NAME", lambda c: c.p1.last),
    "REV": ("NAME", lambda c: c.p1.rev),
    "FULL2": ("NAME", lambda c: c.p2.full),
    "FIRST2": ("NAME", lambda c: c.p2.first),
    "LAST2": ("NAME", lambda c: c.p2.last),
    "TITLE": (None, lambda c: c.p1.title),
    "TITLE2": (None, lambda c: c.p2.title),
    # contact / online
    "EMAIL": ("EMAIL", lambda c: _email(c.rng, c.p1)),
    "EMAIL2": ("EMAIL", lambda c: _email(c.rng, c.p2)),
    "USER": ("USERNAME", lambda c: _username(c.rng, c.p1)),
    "PASS": ("PASSWORD", lambda c: _password(c.rng)),
    "PIN": ("PIN", lambda c: _pin(c.rng)),
    "PHONE": ("PHONE", lambda c: _phone(c.rng)),
    "PHONE_US": ("PHONE", lambda c: _phone_us(c.rng)),
    "PHONE_UK": ("PHONE", lambda c: _phone_uk(c.rng)),
    "PHONE_CA": ("PHONE", lambda c: _phone_us(c.rng, _CA_AREAS)),
    "URL": ("URL", lambda c: _url(c.rng)),
    "IP": ("IP_ADDRESS", lambda c: _ip(c.rng)),
    "IP4": ("IP_ADDRESS", lambda c: _ip4(c.rng)),
    "IP6": ("IP_ADDRESS", lambda c: _ip6(c.rng)),
    "MAC": ("MAC_ADDRESS", lambda c: _mac(c.rng)),
    # address / age
    "ADDR": ("ADDRESS", lambda c: _addr(c.rng)),
    "ADDR_US": ("ADDRESS", lambda c: _addr_us(c.rng)),
    "ADDR_UK": ("ADDRESS", lambda c: _addr_uk(c.rng)),
    "ADDR_CA": ("ADDRESS", lambda c: _addr_ca(c.rng)),
    "ADDR_ML": ("ADDRESS", lambda c: _addr_ml(c.rng)),
    "AGE": ("AGE", lambda c: _age(c.rng)),
    "AGE_Y": ("AGE", lambda c: f"{c.rng.randint(18, 92)} years"),
    "AGE_YRS": ("AGE", lambda c: f"{c.rng.randint(18, 80)} yrs"),
    "AGE_YO": ("AGE", lambda c: f"{c.rng.randint(17, 60)}yo"),
    "AGE_KID_Y": ("AGE", lambda c: f"{c.rng.randint(2, 15)} years"),
    "AGE_KID": ("AGE", lambda c: str(c.rng.randint(3, 15))),
    "AGE_MO": ("AGE", lambda c: f"{c.rng.randint(3, 23)} months"),
    # cloud keys
    "AKID": ("AWS_ACCESS_KEY", lambda c: _aws_akid(c.rng)),
    "ASK": ("AWS_SECRET_KEY", lambda c: _aws_secret(c.rng)),
    # Canada
    "CAHN": ("CA_HEALTH_NUMBER", lambda c: c.rng.choice([_cahn_on, _cahn_bc])(c.rng)),
    "CAHN_ON": ("CA_HEALTH_NUMBER", lambda c: _cahn_on(c.rng)),
    "CAHN_BC": ("CA_HEALTH_NUMBER", lambda c: _cahn_bc(c.rng)),
    "CAHN_QC": ("CA_HEALTH_NUMBER", lambda c: _cahn_qc(c.rng, c.p1)),
    "SIN": ("CA_SOCIAL_INSURANCE_NUMBER", lambda c: _sin(c.rng)),
    # cards
    "CARD": ("CREDIT_DEBIT_CARD_NUMBER", lambda c: _card(c.rng)),
    "CARD_PLAIN": ("CREDIT_DEBIT_CARD_NUMBER", lambda c: _card_digits(c.rng)),
    "CARD_AMEX": ("CREDIT_DEBIT_CARD_NUMBER", lambda c: _card_amex(c.rng)),
    "CVV": ("CREDIT_DEBIT_CARD_CVV", lambda c: _rs(c.rng, _D, 3)),
    "CVV4": ("CREDIT_DEBIT_CARD_CVV", lambda c: _rs(c.rng, _D, 4)),
    "EXP": ("CREDIT_DEBIT_CARD_EXPIRY", lambda c: _expiry(c.rng)),
    # driver ids / vehicles
    "DL": ("DRIVER_ID", lambda c: _dl_any(c.rng)),
    "DL_CA": ("DRIVER_ID", lambda c: _dl_ca(c.rng)),
    "DL_NY": ("DRIVER_ID", lambda c: _dl_ny(c.rng)),
    "DL_FL": ("DRIVER_ID", lambda c: _dl_fl(c.rng)),
    "DL_ON": ("DRIVER_ID", lambda c: _dl_on(c.rng)),
    "DL_UK": ("DRIVER_ID", lambda c: _dl_uk(c.rng, c.p1)),
    "PLATE": ("LICENSE_PLATE", lambda c: _plate(c.rng)),
    "PLATE_US": ("LICENSE_PLATE", lambda c: _plate_us(c.rng)),
    "PLATE_UK": ("LICENSE_PLATE", lambda c: _plate_uk(c.rng)),
    "VIN": ("VEHICLE_IDENTIFICATION_NUMBER", lambda c: _vin(c.rng, c.wmi, c.vin_year)),
    # banking
    # the IBAN country follows the item's BIC where we can build one for it
    "IBAN": ("INTERNATIONAL_BANK_ACCOUNT_NUMBER", lambda c: _iban(c.rng, c.iban_cc)),
    "IBAN_GB": ("INTERNATIONAL_BANK_ACCOUNT_NUMBER", lambda c: _iban(c.rng, "GB")),
    "IBAN_FR": ("INTERNATIONAL_BANK_ACCOUNT_NUMBER", lambda c: _iban(c.rng, "FR")),
    "IBAN_DE": ("INTERNATIONAL_BANK_ACCOUNT_NUMBER", lambda c: _iban(c.rng, "DE")),
    "SWIFT": ("SWIFT_CODE", lambda c: c.swift[0]),
    "SWIFT_ANY": ("SWIFT_CODE", lambda c: _swift_pair(c.rng)[0]),
    "ACCT": ("US_BANK_ACCOUNT_NUMBER", lambda c: _acct(c.rng)),
    "ROUTING": ("US_BANK_ROUTING_NUMBER", lambda c: _routing(c.rng)),
    # national ids
    "NHS": ("UK_NATIONAL_HEALTH_SERVICE_NUMBER", lambda c: _nhs(c.rng)),
    "NINO": ("UK_NATIONAL_INSURANCE_NUMBER", lambda c: _nino(c.rng)),
    "UTR": ("UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER", lambda c: _utr(c.rng)),
    "ITIN": ("US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER", lambda c: _itin(c.rng)),
    "PASSPORT": ("US_PASSPORT_NUMBER", lambda c: _passport(c.rng)),
    "SSN": ("US_SOCIAL_SECURITY_NUMBER", lambda c: _ssn(c.rng)),
    "SSN_PLAIN": ("US_SOCIAL_SECURITY_NUMBER", lambda c: _ssn_digits(c.rng)),
    # fillers (not PII)
    "USBANK": (None, lambda c: c.rng.choice(_US_BANKS)),
    "DATE": (None, lambda c: _date(c.rng)),
    "TIME": (None, lambda c: _time(c.rng)),
    "TS": (None, lambda c: _ts(c.rng)),
    "TICKET": (None, lambda c: _ticket(c.rng)),
    "ORDER": (None, lambda c: _order(c.rng)),
    "AMOUNT": (None, lambda c: _amount(c.rng)),
    "CAR": (None, lambda c: c.car),
}

# ---------------------------------------------------------------------------
# Templates: type -> list of templates.  Every template contains at least one
# slot of its own type; all PII-typed slots are labelled when rendered.
# ---------------------------------------------------------------------------

TEMPLATES: dict[str, list[str]] = {
    "ADDRESS": [
        "Hi, I moved last month, can you update my shipping address to {ADDR_US}? Thanks",
        "Shipping Address: {ADDR}\nDelivery window: {DATE}, {TIME}",
        "CRM note {DATE}: cust {FULL} asked that all letters go to {ADDR_UK} from now on.",
        "{ADDR_CA} - that's where the parcel should have gone, not my old place",
        "Dear Sir or Madam,\n\nPlease send the replacement card to my home address:\n\n{ADDR_ML}\n\nYours faithfully,\n{FULL}",
        "pls deliver to {ADDR} and leave it by the side door",
        "[{TS}] INFO order={ORDER} ship_to=\"{ADDR_US}\" status=PENDING",
        "My billing and mailing address are the same ({ADDR}), so no need to enter it twice.",
    ],
    "AGE": [
        "I'm {AGE} and just opened my first savings account, is there a minimum deposit?",
        "Patient: {FULL}\nAge: {AGE}\nReason for visit: follow-up on blood pressure",
        "My son is {AGE_MO} old, does he need his own seat on the flight?",
        "{FIRST} is {AGE_Y} old now - is {FIRST} eligible for the senior discount?",
        "Applicant aged {AGE}, non-smoker, requesting a quote for 20-year term life cover.",
        "hey its {FIRST}, {AGE_YO}, looking for info on the beginner yoga class",
        "At {AGE_YRS} I never expected to be sorting out a pension transfer, but here we are.",
        "Caller says her mother ({FULL2}, {AGE}) lives with her and should be added as a dependant.",
        "Can my daughter open a junior ISA? She's {AGE_KID_Y} old.",
    ],
    "AWS_ACCESS_KEY": [
        "I accidentally pushed my access key {AKID} to a public GitHub repo, how do I rotate it?",
        "export AWS_ACCESS_KEY_ID={AKID}\nexport AWS_SECRET_ACCESS_KEY={ASK}",
        "[default]\naws_access_key_id = {AKID}\naws_secret_access_key = {ASK}\nregion = eu-west-1",
        "An error occurred (InvalidClientTokenId) when calling the GetCallerIdentity operation; key in use: {AKID}",
        "can someone check why {AKID} keeps getting AccessDenied on s3:GetObject?",
        "Ticket {TICKET}: user {USER} reports key {AKID} was created on {DATE} but never used.",
    ],
    "AWS_SECRET_KEY": [
        "here's the secret key {ASK} - please don't share it with anyone",
        "AWS_SECRET_ACCESS_KEY=\"{ASK}\"",
        "Hi, my secret access key is {ASK} and the key id is {AKID}. Why does the CLI say SignatureDoesNotMatch?",
        "{\"AccessKeyId\": \"{AKID}\", \"SecretAccessKey\": \"{ASK}\", \"Expiration\": \"{TS}\"}",
        "Credentials rotated {DATE}. New secret: {ASK}",
        "{ASK}\n^ that's what the console showed me, is 40 characters the right length?",
    ],
    "CA_HEALTH_NUMBER": [
        "My OHIP number is {CAHN_ON}, can you check whether my coverage is active?",
        "Personal Health Number (PHN): {CAHN_BC}\nName: {FULL}",
        "Numero d'assurance maladie (RAMQ): {CAHN_QC}",
        "Pt {FULL}, HCN {CAHN_ON}, seen {DATE}, referred to cardiology.",
        "i lost my health card, the number was {CAHN} i think",
        "Clinic intake - {FULL} - health no. {CAHN} - callback {PHONE_CA}",
        "{CAHN_BC} is my BC Services Card number, do you need the expiry too?",
    ],
    "CA_SOCIAL_INSURANCE_NUMBER": [
        "My SIN is {SIN}.",
        "Social Insurance Number: {SIN}",
        "For the T4 slip: employee {FULL}, SIN {SIN}. Please reissue before the deadline.",
        "{SIN} is my social insurance number, anything else you need for payroll?",
        "Numero d'assurance sociale (NAS) : {SIN}",
        "EMPLOYEE RECORD | name={REV} | sin={SIN} | start={DATE}",
        "the CRA form wants my sin, is it ok to just type {SIN} in the box?",
    ],
    "CREDIT_DEBIT_CARD_CVV": [
        "card {CARD} exp {EXP} cvv {CVV}",
        "The security code on the back is {CVV}.",
        "CVV: {CVV}",
        "Card number: {CARD}\nExpiry: {EXP}\nCVC: {CVV}\nName on card: {FULL}",
        "the 3 digit code is {CVV} if you need it",
        "For my Amex the 4-digit CID on the front is {CVV4}.",
        "{CARD} {EXP} {CVV}",
    ],
    "CREDIT_DEBIT_CARD_EXPIRY": [
        "It expires {EXP}.",
        "Exp. date: {EXP}",
        "Card: {CARD}, valid thru {EXP}",
        "my new card came today, expiry {EXP}, do I need to update autopay?",
        "Cardholder: {FULL} | Exp {EXP} | Type: Visa Debit",
        "The card on file runs out {EXP}, so I'd like to add a new one before then.",
    ],
    "CREDIT_DEBIT_CARD_NUMBER": [
        "please charge {CARD} for the outstanding balance",
        "Card Number: {CARD}",
        "I used card {CARD} but was charged twice on {DATE}.",
        "Hi, my Amex {CARD_AMEX} was declined at checkout, any idea why?",
        "{CARD} - is this card still linked to my account?",
        "payment_method=card pan={CARD_PLAIN} amount={AMOUNT} result=DECLINED",
        "Per our call on {DATE}, please refund {AMOUNT} to {CARD} rather than store credit.\nRegards,\n{FULL}",
    ],
    "DRIVER_ID": [
        "My driver's license number is {DL_CA} (California).",
        "DL#: {DL}",
        "Name: {FULL}\nDriving licence number: {DL_UK}",
        "Renter {FULL} presented Florida DL {DL_FL}, verified at the counter {DATE}.",
        "can I use my licence {DL_ON} as ID or do you need a passport?",
        "Driver ID {DL} was flagged during the background check, please advise",
        "NY license {DL_NY}, class D",
    ],
    "EMAIL": [
        "You can reach me at {EMAIL}.",
        "Email: {EMAIL}",
        "{EMAIL} <- send the invoice here pls",
        "From: {FULL} <{EMAIL}>\nTo: Customer Support\nSubject: Refund for order {ORDER}",
        "please cc my partner {FULL2} ({EMAIL2}) on everything",
        "[{TS}] WARN login failed for {EMAIL} from {IP4}",
        "I changed my email to {EMAIL} but the receipts still go to the old address.",
    ],
    "INTERNATIONAL_BANK_ACCOUNT_NUMBER": [
        "Please transfer the deposit to IBAN {IBAN}.",
        "IBAN: {IBAN}\nBIC: {SWIFT}\nAccount holder: {FULL}",
        "my iban is {IBAN_GB} (UK current account)",
        "Refund to {IBAN} please, the old account is closed.",
        "Beneficiary: {FULL} / {IBAN} / ref {ORDER}",
        "Bonjour, voici mon IBAN : {IBAN_FR}",
        "Is {IBAN_DE} a valid IBAN? the app keeps rejecting it",
    ],
    "IP_ADDRESS": [
        "My IP is {IP4}, can you whitelist it?",
        "[{TS}] sshd[2231]: Failed password for invalid user {USER} from {IP4} port 52214 ssh2",
        "client_ip={IP} method=GET path=/api/v1/orders status=403",
        "Blocked {IP4} after 50 failed logins in 10 minutes.",
        "Our office router is at {IP4} and the VPN endpoint is {IP6}.",
        "can't reach the printer at {IP4} from my laptop",
        "Source address: {IP6}",
    ],
    "LICENSE_PLATE": [
        "My car's plate is {PLATE}.",
        "License plate: {PLATE_US}\nVehicle: {CAR}",
        "A silver {CAR} with reg {PLATE_UK} has been parked in my space all week.",
        "Parking permit request - plate {PLATE}, resident {FULL}",
        "{PLATE_UK} - got a PCN for this vehicle but I wasn't even there on {DATE}",
        "Tow log {TS}: vehicle {PLATE_US} removed from lot C",
        "is {PLATE} registered to my account for the toll pass?",
    ],
    "MAC_ADDRESS": [
        "The device MAC is {MAC}.",
        "MAC Address: {MAC}",
        "{TS} dhcpd: DHCPACK on {IP4} to {MAC} via eth0",
        "please add {MAC} to the allow list, it's my new laptop",
        "Wi-Fi adapter: Intel AX201 ({MAC})",
        "Switch port Gi1/0/14 learned {MAC} - is that the rogue AP?",
    ],
    "NAME": [
        "Hi, this is {FULL}, I'm calling about my refund.",
        "Name: {FULL}",
        "Dear {TITLE} {LAST},\n\nThank you for contacting us about your order. A replacement is on its way.\n\nKind regards,\n{FULL2}\nCustomer Care",
        "{FIRST} said you'd be able to help me with the warranty claim.",
        "CRM: spoke w/ {FULL} re billing dispute, escalated to {FIRST2} in tier 2.",
        "thx {FIRST}!! :)",
        "Account holder: {TITLE} {FULL}",
        "Both {FULL} and {FULL2} are listed on the lease.",
        "Surname / Given name: {REV}",
    ],
    "PASSWORD": [
        "My password is {PASS} and it still doesn't work.",
        "Password: {PASS}",
        "user={USER} pass={PASS}",
        "I changed it to {PASS} yesterday but the app still asks for the old one.",
        "wifi name is HomeNet_5G and the pw is {PASS}",
        "Temp password for {FULL}: {PASS} (must be changed at first login)",
        "login: {EMAIL}\npwd: {PASS}",
    ],
    "PHONE": [
        "Call me at {PHONE}.",
        "Phone: {PHONE}",
        "{PHONE} - that's my cell, text is better",
        "Mob: {PHONE_UK}",
        "CRM: callback requested by {FULL} on {PHONE_US} after 5pm.",
        "If nobody picks up, try my work line on {PHONE} and ask for {FIRST}.",
        "sms from {PHONE}: running late, be there at {TIME}",
    ],
    "PIN": [
        "My PIN is {PIN}.",
        "I can't remember if my card PIN is {PIN} or something else, can you reset it?",
        "PIN: {PIN}",
        "the voicemail pin is {PIN} if you need to check messages while I'm away",
        "Security PIN set to {PIN} for account holder {FULL}.",
        "pin {PIN} not working at the ATM",
        "Telephone banking passcode (PIN): {PIN}",
    ],
    "SWIFT_CODE": [
        "SWIFT code: {SWIFT}",
        "What's the BIC for my bank? I was told {SWIFT} but the transfer bounced.",
        "Wire instructions - SWIFT/BIC {SWIFT}, IBAN {IBAN}, beneficiary {FULL}",
        "Intermediary bank: {SWIFT_ANY}\nBeneficiary bank: {SWIFT}",
        "{SWIFT} - is this the right code for an international transfer?",
        ":52A:{SWIFT_ANY}\n:57A:{SWIFT}\n:59:/{IBAN}\n{FULL}",
        "Beneficiary bank BIC: {SWIFT}; beneficiary name: {FULL}",
    ],
    "UK_NATIONAL_HEALTH_SERVICE_NUMBER": [
        "My NHS number is {NHS}.",
        "NHS No: {NHS}",
        "Patient {FULL} (NHS {NHS}) missed the appointment on {DATE}.",
        "{NHS} is the number on my letter from the GP surgery, is that what you need?",
        "Referral\nName: {FULL}\nNHS Number: {NHS}\nGP: Dr {LAST2}",
        "hi can u check my prescription status, nhs no {NHS} thanks",
    ],
    "UK_NATIONAL_INSURANCE_NUMBER": [
        "My National Insurance number is {NINO}.",
        "NI number: {NINO}",
        "Employee: {FULL}, NINO {NINO}, tax code 1257L",
        "{NINO} - that's my NI no., do you need my UTR as well?",
        "P45 details for {FULL}: NI {NINO}, leaving date {DATE}",
        "Someone claiming to be from HMRC asked for my national insurance number ({NINO}) over the phone - is that normal?",
    ],
    "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER": [
        "My UTR is {UTR}.",
        "Unique Taxpayer Reference: {UTR}",
        "Self Assessment for {FULL}, UTR {UTR}, deadline 31 January.",
        "{UTR} is the 10 digit number on my SA302 - is that my UTR?",
        "Client record - UTR: {UTR} | NINO: {NINO} | Agent ref: {TICKET}",
        "pls file my return, utr {UTR}",
    ],
    "URL": [
        "Check out {URL} for the details.",
        "Website: {URL}",
        "The link {URL} gives me a 404.",
        "[{TS}] GET {URL} 200 512ms",
        "{URL}\nthis is the page I was talking about",
        "I tried resetting via {URL} but no email arrived.",
        "see my portfolio ({URL})",
    ],
    "USERNAME": [
        "My username is {USER}.",
        "Username: {USER}",
        "I can't log in as {USER}, it says the account is locked.",
        "[{TS}] auth: user '{USER}' logged in from {IP4}",
        "{USER} is my gamertag, add me!",
        "CRM: customer {FULL} (login {USER}) requested an MFA reset.",
        "ssh {USER}@{IP4} just hangs after the banner",
    ],
    "US_BANK_ACCOUNT_NUMBER": [
        "My checking account number is {ACCT}.",
        "Account #: {ACCT}\nRouting #: {ROUTING}",
        "Please set up direct deposit to account {ACCT} at {USBANK}.",
        "{ACCT} is my savings account, can you move $500 there?",
        "ACH debit failed: acct={ACCT} rtn={ROUTING} reason=R03",
        "The refund went to my old account {ACCT}, which is closed. Can it be resent?",
    ],
    "US_BANK_ROUTING_NUMBER": [
        "The routing number is {ROUTING}.",
        "ABA: {ROUTING}",
        "Routing number {ROUTING}, account {ACCT}",
        "is {ROUTING} the right routing # for {USBANK}?",
        "RTN {ROUTING} / DDA {ACCT} / Name: {FULL}",
        "For wires use {ROUTING}, not the ACH one",
    ],
    "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER": [
        "My ITIN is {ITIN}.",
        "ITIN: {ITIN}",
        "I don't have an SSN, but my individual taxpayer identification number is {ITIN}.",
        "W-7 approved - {FULL} assigned ITIN {ITIN} on {DATE}.",
        "{ITIN} - can I use this to open a checking account?",
        "Taxpayer ID (ITIN) {ITIN}; filing status: single",
    ],
    "US_PASSPORT_NUMBER": [
        "My passport number is {PASSPORT}.",
        "Passport No.: {PASSPORT}\nNationality: USA\nExpiry: {DATE}",
        "Traveler {FULL}, US passport {PASSPORT}, seat 14C",
        "{PASSPORT} is my passport number, I need to update it on the booking",
        "please add passport {PASSPORT} to my frequent flyer profile",
        "APIS: surname {LAST}, given {FIRST}, doc type P, doc no {PASSPORT}, issuing country USA",
    ],
    "US_SOCIAL_SECURITY_NUMBER": [
        "My social security number is {SSN}.",
        "SSN: {SSN}",
        "is {SSN} the ssn you have on file for me?",
        "Applicant {FULL}, SSN {SSN}, requested a credit freeze.",
        "not the last four, here's the whole thing: {SSN}",
        "Please verify the employee's Social Security No. ({SSN}) before processing the W-2.",
        "ssn={SSN_PLAIN}",
    ],
    "VEHICLE_IDENTIFICATION_NUMBER": [
        "The VIN is {VIN}.",
        "VIN: {VIN}\nMake/Model: {CAR}",
        "{VIN} - can you check if there are any open recalls on this?",
        "Claim {TICKET}: insured vehicle {CAR}, VIN {VIN}, owner {FULL}.",
        "my car's vehicle identification number is {VIN}",
        "is there a way to look up the service history by {VIN}",
    ],
}

_SLOT_RE = re.compile(r"\{([A-Z][A-Z0-9_]*)\}")


def _render(template: str, ctx: _Ctx):
    out, ents, pos, last = [], [], 0, 0
    for m in _SLOT_RE.finditer(template):
        lit = template[last:m.start()]
        out.append(lit)
        pos += len(lit)
        etype, fn = _SLOTS[m.group(1)]
        val = fn(ctx)
        if etype:
            ents.append({"type": etype, "start": pos, "end": pos + len(val), "value": val})
        out.append(val)
        pos += len(val)
        last = m.end()
    out.append(template[last:])
    return "".join(out), ents


def _generate_full(seed: int = 1234, per_type: int = 15):
    rng = random.Random(seed)
    items = []
    for t in PII_TYPES:
        tmpls = list(TEMPLATES[t])
        order = []
        while len(order) < per_type:
            rng.shuffle(tmpls)
            order.extend(tmpls)
        for tmpl in order[:per_type]:
            ctx = _Ctx(rng)
            text, ents = _render(tmpl, ctx)
            items.append({"text": text, "entities": ents, "primary": t, "template": tmpl})
    return items


def generate(seed: int = 1234, per_type: int = 15) -> list[dict]:
    """Labelled PII items: {"text", "entities": [{"type","start","end"}]}."""
    return [{"text": it["text"],
             "entities": [{"type": e["type"], "start": e["start"], "end": e["end"]}
                          for e in it["entities"]]}
            for it in _generate_full(seed, per_type)]


# ---------------------------------------------------------------------------
# Negatives
# ---------------------------------------------------------------------------

def _bad16(rng, grouped=None) -> str:
    while True:
        d = rng.choice("3456789") + _rs(rng, _D, 15)
        if not luhn_ok(d):
            break
    if grouped is None:
        grouped = rng.random() < 0.5
    return " ".join(d[i:i + 4] for i in range(0, 16, 4)) if grouped else d


def _isbn13(rng) -> str:
    body = "978" + rng.choice(["0", "1"]) + _rs(rng, _D, 8)
    c = (10 - sum(int(ch) * (1 if i % 2 == 0 else 3) for i, ch in enumerate(body)) % 10) % 10
    d = body + str(c)
    return f"{d[:3]}-{d[3]}-{d[4:7]}-{d[7:12]}-{d[12]}"


def _version(rng) -> str:
    return rng.choice([f"{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 30)}",
                       f"v{rng.randint(1, 5)}.{rng.randint(0, 12)}",
                       f"{rng.randint(1, 3)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}-beta.{rng.randint(1, 5)}"])


def _invoice(rng) -> str:
    return rng.choice([f"INV-{rng.randint(2022, 2025)}-{rng.randint(1, 99999):05d}",
                       f"INV{rng.randint(100000, 999999)}", f"#{rng.randint(10000, 99999)}"])


def _tracking(rng) -> str:
    f = rng.randrange(3)
    if f == 0:
        return "1Z" + _rs(rng, _U + _D, 6) + _rs(rng, _D, 10)
    if f == 1:
        return "9400 " + " ".join(_rs(rng, _D, 4) for _ in range(4)) + " " + _rs(rng, _D, 2)
    return f"{_rs(rng, _U, 2)}{_rs(rng, _D, 9)}GB"


def _sku(rng) -> str:
    return rng.choice([f"SKU-{rng.randint(1000, 9999)}-{rng.choice(['BLK', 'WHT', 'RED', 'NVY'])}-{rng.choice(['S', 'M', 'L', 'XL'])}",
                       f"{_rs(rng, _U, 3)}-{rng.randint(10000, 99999)}",
                       f"B0{_rs(rng, _U + _D, 8)}"])


def _pct(rng) -> str:
    return rng.choice([f"{rng.randint(1, 60)}%", f"{rng.randint(0, 19)}.{rng.randint(0, 9)}%",
                       f"{rng.randint(1, 9)}.{rng.randint(10, 99)} percent"])


_PRODUCTS = ["iPhone 15 Pro", "Galaxy S24 Ultra", "Kindle Paperwhite", "ThinkPad X1 Carbon",
             "Surface Pro 9", "PlayStation 5", "Dyson V15", "Instant Pot Duo", "Echo Dot",
             "Pixel 8", "MacBook Air M2", "Nintendo Switch OLED", "Fitbit Charge 6",
             "Roomba j7", "Vitamix E310", "Sonos Era 100"]
_CITIES = ["Seattle", "Dublin", "Lisbon", "Osaka", "Nairobi", "Toronto", "Manchester",
           "Sao Paulo", "Singapore", "Melbourne", "Cape Town", "Vancouver", "Rotterdam", "Austin"]
_PLACES = ["Seattle", "Dublin", "Lisbon", "Osaka", "Nairobi", "Toronto", "Manchester",
           "Sao Paulo", "Singapore", "Reykjavik", "Melbourne", "Cape Town", "Vancouver",
           "Lake Tahoe", "Yosemite", "the Scottish Highlands", "Mount Fuji", "Patagonia"]

_NEG_TEMPLATES = [
    "Your order {ORDER} has shipped. Tracking number: {TRACKING}.",
    "Invoice {INVOICE} for {AMOUNT} is due on {DATE}.",
    "Reference {BAD16} could not be matched to a payment, please check the invoice.",
    "Transaction ID {BAD16} settled on {DATE} for {AMOUNT}.",
    "Order number {BAD16P} - when will it arrive?",
    "The meeting moved to {TIME} on {DATE}.",
    "Prices went up {PCT} this quarter, from {AMOUNT_USD} to {AMOUNT_USD2}.",
    "Please upgrade to version {VERSION}; {VERSION2} has a known memory leak.",
    "ISBN {ISBN} is the paperback edition, the hardcover is out of print.",
    "{SKU} is out of stock in that colour, sorry!",
    "The {PRODUCT} ships from our warehouse in {CITY} within 2 business days.",
    "How do I do a password reset if I can't get to the login page?",
    "I read the license agreement but it doesn't say anything about commercial use.",
    "Where in account settings can I turn off marketing emails?",
    "The user guide says to hold the power button for 10 seconds, that didn't work.",
    "Flight BA {FLIGHTNO} departs at {TIME} from gate B{GATE}.",
    "Batch {LOT} was produced on {DATE}. Best before {BESTBEFORE}.",
    "Room {ROOM} is booked from 09:00 to 11:30 on {DATE}.",
    "Quarterly revenue was {AMOUNT_BIG}, up {PCT} year over year.",
    "Error 0x80070005 when installing update KB{KB}, any ideas?",
    "The {PRODUCT} has a 12 month warranty and weighs 1.4 kg.",
    "The password reset email link expires after 24 hours.",
    "Can you make the login page remember my language preference?",
    "I've been a customer for {YEARS} years and never had this problem before.",
    "Section {SECTION} of the user guide covers account settings.",
    "The {PRODUCT} costs {AMOUNT} plus {VAT} VAT.",
    "Order {ORDER} was placed at {TIME} and totals {AMOUNT}.",
    "APR is {RATE} fixed for 60 months on loans over $10,000.",
    "Part number {SKU} fits models from 2015 to 2019.",
    "Package weighs 2.3 lbs, dimensions 12 x 8 x 4 in.",
    "Build {BUILD} passed all {NTESTS} tests in 6m 12s.",
    "{PLACE} and {PLACE2} are our top picks for a summer trip.",
    "Is the {PRODUCT} cheaper than the {PRODUCT2} right now?",
    "Our {CITY} and {CITY2} offices will be closed on {DATE}.",
    "Chapter 11 starts on page 214.",
    "Coupon SAVE20 gives 20% off orders over $50 until {DATE}.",
    "Kernel 6.8.0-45-generic was released on {DATE}.",
    "Please read the license agreement before installing version {VERSION}.",
    "Under account settings, choose Security, then Password reset.",
    "Step 3: open the login page and click Forgot password.",
    "Store hours: Mon-Fri 9:00-17:30, Sat 10:00-16:00.",
    "Ticket {TICKET} was closed after 3 days with no reply.",
    "Lot {LOT} of the {PRODUCT} was recalled in {MONTHYEAR}.",
    "The exchange rate was 1.0842 USD per EUR on {DATE}.",
    "Use port 8443 for the admin console and 5432 for Postgres.",
    "Estimated delivery: {DATE} between {TIME} and 6pm.",
    "Our user guide and license agreement were updated on {DATE}.",
    "Serial number {BAD16} is printed under the battery cover - is it still under warranty?",
    "Confirmation code {CONF} - see you on {DATE}!",
    "We shipped {NUNITS} units in Q3, {PCT} more than Q2.",
    "The login page shows error 503 between 1am and {NIGHT} every night.",
    "Temperature 72F, humidity 45%, wind 12 mph out of the NW.",
    "Does the annual plan at {AMOUNT} include the user guide in print?",
    "Our return policy: 30 days, receipt required, {RESTOCK} restocking fee on opened items.",
    "The dentist moved my appointment to {DATE} at {TIME}.",
    "Download speed dropped from 940 Mbps to 85 Mbps after the {VERSION} firmware update.",
    "Stock ticker AMZN closed at {AMOUNT_USD}, down {PCT}.",
    "You have 12,480 loyalty points, worth about {AMOUNT_USD}.",
    "Reset your router by holding the button for 30 seconds, then wait 2 minutes.",
    "Model {MODEL} and model {MODEL2} use the same 65W charger.",
]


def _neg_slots():
    return {
        "ORDER": _order, "TRACKING": _tracking, "INVOICE": _invoice,
        "AMOUNT": _amount, "AMOUNT2": _amount,
        "AMOUNT_USD": lambda r: f"${r.randint(10, 999)}.{r.randint(0, 99):02d}",
        "AMOUNT_USD2": lambda r: f"${r.randint(1000, 1999)}.{r.randint(0, 99):02d}",
        "VAT": lambda r: r.choice(["20%", "19%", "5%", "21%", "13%"]),
        "RATE": lambda r: f"{r.randint(2, 9)}.{r.choice(['25', '49', '75', '99', '9'])}%",
        "RESTOCK": lambda r: r.choice(["15%", "10%", "20%", "25 percent"]),
        "NIGHT": lambda r: r.choice(["2am", "3am", "3:30am", "02:45"]),
        "CITY": lambda r: r.choice(_CITIES), "CITY2": lambda r: r.choice(_CITIES),
        "AMOUNT_BIG": lambda r: f"${r.randint(2, 900)}.{r.randint(1, 9)} million",
        "DATE": _date, "TIME": _time, "TIME2": _time, "PCT": _pct,
        "VERSION": _version, "VERSION2": _version, "ISBN": _isbn13, "SKU": _sku,
        "PRODUCT": lambda r: r.choice(_PRODUCTS), "PRODUCT2": lambda r: r.choice(_PRODUCTS),
        "PLACE": lambda r: r.choice(_PLACES), "PLACE2": lambda r: r.choice(_PLACES),
        "BAD16": _bad16, "BAD16P": lambda r: _bad16(r, grouped=False),
        "FLIGHTNO": lambda r: str(r.randint(100, 999)), "GATE": lambda r: str(r.randint(1, 48)),
        "LOT": lambda r: f"L{r.randint(2022, 2025)}{r.randint(100, 999)}",
        "BESTBEFORE": lambda r: f"{r.randint(1, 12):02d}/{r.randint(26, 29)}",
        "ROOM": lambda r: str(r.randint(100, 4999)), "KB": lambda r: str(r.randint(5000000, 5049999)),
        "YEARS": lambda r: str(r.randint(2, 25)),
        "SECTION": lambda r: f"{r.randint(1, 9)}.{r.randint(1, 9)}.{r.randint(1, 9)}",
        "BUILD": lambda r: f"{r.randint(1, 30)}.{r.randint(0, 9)}.{r.randint(1000, 9999)}",
        "NTESTS": lambda r: f"{r.randint(1, 9)},{r.randint(100, 999)}",
        "TICKET": _ticket,
        "MONTHYEAR": lambda r: f"{r.choice(_MONTHS)} {r.randint(2021, 2025)}",
        "CONF": lambda r: _rs(r, "ABCDEFGHJKLMNPRSTUVWXYZ23456789", 6),
        "NUNITS": lambda r: f"{r.randint(10, 990)},{r.randint(100, 999)}",
        "MODEL": lambda r: f"{_rs(r, _U, 2)}-{r.randint(100, 9999)}",
        "MODEL2": lambda r: f"{_rs(r, _U, 2)}-{r.randint(100, 9999)}",
    }


def negatives(seed: int = 1234, n: int = 80) -> list[dict]:
    """Texts containing no PII (entities == []) but plenty of look-alikes."""
    rng = random.Random(seed * 7919 + 17)
    slots = _neg_slots()
    tmpls = list(_NEG_TEMPLATES)
    order = []
    while len(order) < n:
        rng.shuffle(tmpls)
        order.extend(tmpls)
    out = []
    for t in order[:n]:
        text = _SLOT_RE.sub(lambda m: slots[m.group(1)](rng), t)
        out.append({"text": text, "entities": []})
    return out


# ---------------------------------------------------------------------------
# Self-check
# ---------------------------------------------------------------------------

def _validate(etype: str, v: str) -> bool:
    if etype == "CREDIT_DEBIT_CARD_NUMBER":
        return bool(re.fullmatch(r"[\d -]+", v)) and card_ok(v)
    if etype == "CA_SOCIAL_INSURANCE_NUMBER":
        return sin_ok(v)
    if etype == "CA_HEALTH_NUMBER":
        return ca_health_ok(v)
    if etype == "INTERNATIONAL_BANK_ACCOUNT_NUMBER":
        return iban_ok(v) and iban_national_ok(v)
    if etype == "US_BANK_ROUTING_NUMBER":
        return aba_ok(v)
    if etype == "UK_NATIONAL_HEALTH_SERVICE_NUMBER":
        return nhs_ok(v)
    if etype == "VEHICLE_IDENTIFICATION_NUMBER":
        return vin_ok(v)
    if etype == "US_SOCIAL_SECURITY_NUMBER":
        return ssn_ok(v) and bool(re.fullmatch(r"\d{3}([- ]?)\d{2}\1\d{4}", v))
    if etype == "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER":
        return itin_ok(v)
    if etype == "UK_NATIONAL_INSURANCE_NUMBER":
        return nino_ok(v)
    if etype == "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER":
        return utr_ok(v)
    if etype == "AWS_ACCESS_KEY":
        return bool(re.fullmatch(r"(AKIA|ASIA)[A-Z2-7]{16}", v))
    if etype == "AWS_SECRET_KEY":
        return bool(re.fullmatch(r"[A-Za-z0-9/+]{40}", v))
    if etype == "IP_ADDRESS":
        try:
            ipaddress.ip_address(v)
            return True
        except ValueError:
            return False
    if etype == "MAC_ADDRESS":
        return bool(re.fullmatch(r"([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}|[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}", v))
    if etype == "EMAIL":
        return bool(re.fullmatch(r"[a-z0-9._+]+@[a-z0-9-]+(\.[a-z0-9-]+)+", v))
    if etype == "URL":
        return bool(re.fullmatch(r"(https?://)?[a-z0-9.-]+\.[a-z]{2,}(:\d+)?(/[^\s]*)?", v))
    if etype == "CREDIT_DEBIT_CARD_EXPIRY":
        m = re.fullmatch(r"(\d{1,2})[/-](\d{2}|\d{4})", v)
        if m:
            return 1 <= int(m.group(1)) <= 12
        return bool(re.fullmatch(r"[A-Z][a-z]{2} 20\d\d", v))
    if etype == "CREDIT_DEBIT_CARD_CVV":
        return bool(re.fullmatch(r"\d{3,4}", v))
    if etype == "PIN":
        return bool(re.fullmatch(r"\d{4}|\d{6}", v))
    if etype == "AGE":
        return bool(re.fullmatch(r"\d{1,3}( years| yrs| months|yo)?", v))
    if etype == "PHONE":
        return 10 <= len(_digits(v)) <= 13
    if etype == "SWIFT_CODE":
        return bool(re.fullmatch(r"[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?", v))
    if etype == "US_PASSPORT_NUMBER":
        return bool(re.fullmatch(r"[A-Z0-9]\d{8}", v))
    if etype == "US_BANK_ACCOUNT_NUMBER":
        return bool(re.fullmatch(r"\d{8,17}", v))
    if etype == "DRIVER_ID":
        return bool(re.fullmatch(r"[A-Z0-9 -]{8,18}", v))
    if etype == "LICENSE_PLATE":
        return bool(re.fullmatch(r"[A-Z0-9 -]{5,8}", v))
    if etype == "NAME":
        return bool(re.fullmatch(r"[A-Za-z][A-Za-z .,'-]+", v)) and not re.match(r"(Mr|Ms|Mrs|Dr)\b", v)
    if etype == "ADDRESS":
        return bool(re.search(r"\d", v)) and ("," in v or "\n" in v)
    return bool(v)


def _self_check(items, negs) -> list[str]:
    errors = []
    for i, it in enumerate(items):
        text = it["text"]
        if not text.isascii():
            errors.append(f"item {i}: non-ASCII text")
        prev_end = -1
        for e in it["entities"]:
            if text[e["start"]:e["end"]] != e["value"]:
                errors.append(f"item {i}: offset mismatch {e}")
            if e["start"] < prev_end:
                errors.append(f"item {i}: overlapping/unsorted entities")
            prev_end = e["end"]
            if e["value"] != e["value"].strip() or not e["value"]:
                errors.append(f"item {i}: untrimmed span {e['value']!r}")
            if not _validate(e["type"], e["value"]):
                errors.append(f"item {i}: validation failed {e['type']} {e['value']!r}")
            if e["start"] > 0 and text[e["start"] - 1].isalnum():
                errors.append(f"item {i}: span glued to preceding char {e['value']!r}")
            if e["end"] < len(text) and text[e["end"]].isalnum():
                errors.append(f"item {i}: span glued to following char {e['value']!r}")
        if it["primary"] not in {e["type"] for e in it["entities"]}:
            errors.append(f"item {i}: primary type {it['primary']} missing")
    for t in PII_TYPES:
        if len(TEMPLATES[t]) < 5:
            errors.append(f"{t}: fewer than 5 templates")
        for tm in TEMPLATES[t]:
            types = {_SLOTS[k][0] for k in _SLOT_RE.findall(tm)}
            if t not in types:
                errors.append(f"{t}: template lacks its own slot: {tm!r}")
    if len(set(FIRST_NAMES)) < 100 or len(set(SURNAMES)) < 100:
        errors.append("name lists too short")
    card_like = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
    for i, ng in enumerate(negs):
        t = ng["text"]
        if ng["entities"] or not t.isascii():
            errors.append(f"negative {i}: entities or non-ASCII")
        if "@" in t or "http" in t or "www." in t:
            errors.append(f"negative {i}: email/url-like content: {t!r}")
        for m in card_like.finditer(t):
            d = _digits(m.group())
            if d[0] in "3456" and luhn_ok(d):
                errors.append(f"negative {i}: Luhn-valid card-like number {m.group()!r}")
        for m in re.finditer(r"97[89]-[\d-]{13}", t):
            if not isbn13_ok(m.group()):
                errors.append(f"negative {i}: bad ISBN {m.group()!r}")
    return errors


if __name__ == "__main__":
    from collections import Counter

    items = _generate_full()
    negs = negatives()
    primary = Counter(it["primary"] for it in items)
    ent_counts = Counter(e["type"] for it in items for e in it["entities"])
    print(f"items: {len(items)}  entities: {sum(ent_counts.values())}  negatives: {len(negs)}")
    print(f"first names: {len(set(FIRST_NAMES))}  surnames: {len(set(SURNAMES))}  "
          f"templates: {sum(len(v) for v in TEMPLATES.values())}  negative templates: {len(_NEG_TEMPLATES)}")
    print(f"{'type':42s} {'items':>5s} {'ents':>5s} {'tmpls':>5s}")
    for t in PII_TYPES:
        print(f"{t:42s} {primary[t]:5d} {ent_counts[t]:5d} {len(TEMPLATES[t]):5d}")
    print()
    for t in PII_TYPES:
        print(f"== {t}")
        for it in [x for x in items if x["primary"] == t][:2]:
            spans = ", ".join(f"{e['type']}={e['value']!r}" for e in it["entities"])
            print(f"  {it['text']!r}\n    -> {spans}")
    print("\n== NEGATIVES (sample)")
    for ng in negs[:8]:
        print(f"  {ng['text']!r}")
    errs = _self_check(items, negs)
    # determinism + public API shape
    if generate() != generate() or negatives() != negatives():
        errs.append("non-deterministic output")
    pub = generate()
    if any(set(e) != {"type", "start", "end"} for it in pub for e in it["entities"]):
        errs.append("public entity dicts have unexpected keys")
    # second seed, larger set, to stress the generators
    errs += _self_check(_generate_full(seed=99, per_type=60), negatives(seed=99, n=300))
    print()
    if errs:
        print(f"SELF-CHECK FAILED ({len(errs)} problems)")
        for e in errs[:40]:
            print("  ", e)
        raise SystemExit(1)
    print("SELF-CHECK OK: offsets slice back to inserted values, checksums hold "
          "(Luhn cards/SIN/OHIP, IBAN mod-97 + national keys, ABA, NHS mod-11, VIN, "
          "SSN ranges, ITIN groups, NINO prefixes, UTR, BC PHN), negatives clean.")
