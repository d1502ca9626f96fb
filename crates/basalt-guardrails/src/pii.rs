//! Detectors for Bedrock's 31 PII entity types: a pattern per type, a checksum
//! where the identifier has one (Luhn, IBAN mod 97, ABA routing, NHS mod 11,
//! VIN check digit, SIN Luhn), and context words for identifiers that are just
//! digits (a PIN is only a PIN next to the word "PIN").

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;

/// Every PII entity type Bedrock defines, in its order.
pub const PII_TYPES: [&str; 31] = [
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
];

/// One entity found in a text: its type and byte range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    pub kind: &'static str,
    pub start: usize,
    pub end: usize,
}

/// How a type is recognised.
struct Recognizer {
    kind: &'static str,
    regex: Regex,
    /// The capture group holding the entity (0 = the whole match).
    group: usize,
    /// Context words, one of which must appear shortly before the match.
    context: Option<Regex>,
    validate: fn(&str) -> bool,
    /// Higher wins when two entities overlap.
    priority: u8,
}

fn re(pattern: &str) -> Regex {
    // The patterns are constants checked by the tests below.
    Regex::new(pattern).unwrap_or_else(|e| {
        tracing::error!(pattern, error = %e, "bad built-in PII pattern");
        Regex::new("$^").unwrap_or_else(|_| unreachable_regex())
    })
}

#[expect(
    clippy::panic,
    reason = "only reachable if the regex engine itself is broken"
)]
fn unreachable_regex() -> Regex {
    panic!("the regex engine cannot compile an empty pattern")
}

fn any(_: &str) -> bool {
    true
}

fn digits(s: &str) -> Vec<u32> {
    s.chars().filter_map(|c| c.to_digit(10)).collect()
}

/// Luhn checksum (cards, Canadian SIN).
pub fn luhn(s: &str) -> bool {
    let d = digits(s);
    if d.len() < 2 {
        return false;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn card(s: &str) -> bool {
    let d = digits(s);
    if !(13..=19).contains(&d.len()) || !luhn(s) {
        return false;
    }
    let prefix = |n: usize| d[..n].iter().fold(0u32, |a, &x| a * 10 + x);
    matches!(d[0], 4)
        || (51..=55).contains(&prefix(2))
        || (2221..=2720).contains(&prefix(4))
        || matches!(prefix(2), 34 | 37 | 36 | 38 | 30 | 35 | 62 | 65 | 64)
        || prefix(4) == 6011
}

/// IBAN: ISO 13616 mod-97 check.
pub fn iban(s: &str) -> bool {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    // Unicode digits (`\d` matches them) are not IBAN digits.
    if !compact.is_ascii() || !(15..=34).contains(&compact.len()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut rem: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let v = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// ABA routing number checksum (3-7-1 weights).
pub fn aba(s: &str) -> bool {
    let d = digits(s);
    if d.len() != 9 || d.iter().all(|&x| x == d[0]) {
        return false;
    }
    let sum = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8]);
    sum.is_multiple_of(10)
}

/// NHS number: mod-11 check digit.
pub fn nhs(s: &str) -> bool {
    let d = digits(s);
    if d.len() != 10 {
        return false;
    }
    let sum: u32 = d[..9]
        .iter()
        .enumerate()
        .map(|(i, &x)| x * (10 - i as u32))
        .sum();
    let check = 11 - (sum % 11);
    let check = if check == 11 { 0 } else { check };
    check != 10 && check == d[9]
}

/// North American VIN check digit (position 9).
pub fn vin(s: &str) -> bool {
    const WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];
    let v: Vec<char> = s.chars().collect();
    if v.len() != 17 || !v.iter().any(char::is_ascii_digit) {
        return false;
    }
    let value = |c: char| -> Option<u32> {
        Some(match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A' | 'J' => 1,
            'B' | 'K' | 'S' => 2,
            'C' | 'L' | 'T' => 3,
            'D' | 'M' | 'U' => 4,
            'E' | 'N' | 'V' => 5,
            'F' | 'W' => 6,
            'G' | 'P' | 'X' => 7,
            'H' | 'Y' => 8,
            'R' | 'Z' => 9,
            _ => return None,
        })
    };
    let mut sum = 0;
    for (c, w) in v.iter().zip(WEIGHTS) {
        match value(*c) {
            Some(x) => sum += x * w,
            None => return false,
        }
    }
    let check = match sum % 11 {
        10 => 'X',
        n => char::from_digit(n, 10).unwrap_or('?'),
    };
    v[8] == check
}

fn ssn(s: &str) -> bool {
    let d = digits(s);
    if d.len() != 9 {
        return false;
    }
    let area = d[0] * 100 + d[1] * 10 + d[2];
    let group = d[3] * 10 + d[4];
    let serial = d[5] * 1000 + d[6] * 100 + d[7] * 10 + d[8];
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

fn itin(s: &str) -> bool {
    let d = digits(s);
    if d.len() != 9 || d[0] != 9 {
        return false;
    }
    let group = d[3] * 10 + d[4];
    matches!(group, 50..=65 | 70..=88 | 90..=92 | 94..=99)
}

fn sin(s: &str) -> bool {
    let d = digits(s);
    d.len() == 9 && d[0] != 0 && d[0] != 8 && luhn(s)
}

fn ipv4(s: &str) -> bool {
    s.split('.').count() == 4 && s.split('.').all(|p| p.parse::<u8>().is_ok())
}

fn nino(s: &str) -> bool {
    let p: String = s.chars().take(2).collect();
    !matches!(p.as_str(), "BG" | "GB" | "NK" | "KN" | "TN" | "NT" | "ZZ")
}

fn leading_number(s: &str) -> Option<u32> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s[..end].parse().ok()
}

/// `2024-02-20`, `20-02-2024`: dates, not identifiers.
fn is_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 3
        && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_digit()))
        && parts.iter().any(|p| p.len() == 4)
        && parts.iter().filter(|p| p.len() == 2).count() == 2
}

fn has_digit(s: &str) -> bool {
    s.chars().any(|c| c.is_ascii_digit())
}

fn secret_key(s: &str) -> bool {
    s.chars().any(|c| c.is_ascii_digit())
        && s.chars().any(|c| c.is_ascii_lowercase())
        && s.chars().any(|c| c.is_ascii_uppercase())
}

/// ISO 3166 country codes, for SWIFT/BIC codes (characters 5–6).
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW";

fn swift(s: &str) -> bool {
    s.len() >= 6 && COUNTRIES.split(' ').any(|c| c == &s[4..6])
}

/// Common given names, for names that carry no title or cue.
const FIRST_NAMES: &str = "james john robert michael william david richard joseph thomas charles christopher daniel matthew anthony mark donald steven paul andrew joshua kenneth kevin brian george timothy ronald edward jason jeffrey ryan jacob gary nicholas eric jonathan stephen larry justin scott brandon benjamin samuel gregory alexander frank patrick raymond jack dennis jerry tyler aaron jose adam nathan henry douglas zachary peter kyle noah ethan jeremy walter christian keith roger terry austin sean gerald carl harold dylan arthur lawrence jordan jesse bryan billy bruce gabriel joe logan alan juan albert willie elijah wayne randy vincent mason roy ralph bobby russell bradley philip eugene liam oliver lucas mohammed muhammad ahmed ali omar hiroshi wei chen raj priya mary patricia jennifer linda elizabeth barbara susan jessica sarah karen lisa nancy betty sandra margaret ashley kimberly emily donna michelle carol amanda melissa deborah stephanie dorothy rebecca sharon laura cynthia amy kathleen angela shirley brenda emma anna pamela nicole samantha katherine christine helen debra rachel carolyn janet maria catherine heather diane olivia julie joyce victoria ruth virginia lauren kelly christina joan evelyn judith andrea hannah megan cheryl jacqueline martha madison teresa gloria sara janice ann kathryn abigail sophia frances jean alice judy isabella julia grace amber denise danielle marilyn beverly charlotte natalie theresa diana brittany doris kayla alexis lori marie sofia mia ava chloe zoe lily ella aisha fatima sofia elena ana lucia ingrid astrid diego mateo santiago sebastian valentina camila mariana daniela gabriela isabel carmen pablo javier alejandro carlos luis miguel rafael andres fernando ricardo eduardo sergio antonio manuel francisco jorge alberto luca marco matteo giulia chiara francesca alessandro giovanni lorenzo andrea federica sara elisa pierre jean louis camille chloe manon lucas hugo jules lea ines emma hans klaus lukas jonas felix leon paul anna lena marie katharina johanna nils lars erik sven henrik bjorn freya sigrid magnus oskar karl ivan dmitri sergei andrei alexei mikhail nikolai olga tatiana svetlana natalia irina ekaterina anastasia yulia bogdan piotr katarzyna agnieszka tomasz pavel jan petr eva ahmed mohamed mahmoud hassan hussein youssef khaled tariq hamid karim omar samir layla leila yasmin noor zainab mariam amira salma hana aaliyah amara abebe kofi kwame ama emeka chinedu ngozi nkechi oluwaseun tunde adebayo sipho thabo zanele wanjiru njeri otieno kamau raj rahul amit vikram arjun rohan sanjay anil sunil priya ananya divya kavya deepika pooja neha sneha aditi riya wei ming jun jin li lin hui yan mei xiao hiroshi takashi kenji yuki keiko haruto sakura aiko akira yuto min-jun minjun seo-yeon jisoo ji-woo hyun sung-min thanh linh minh nguyen tuan anh siobhan aoife ciaran niamh sean callum eilidh hamish isla rhys dylan cerys owain bronwen finn ronan declan connor liam aidan tariq farah nadia rania dalia ines esther ruth naomi miriam rachel rebecca leah tamar yael avi eitan noam ari ezra";

/// Capitalised words that start sentences and labels but are not names.
const NOT_NAMES: &str = "the this that these those there then than our your their his her its my we you they it a an and or but if so please thanks thank hello hi dear best kind regards sincerely cheers customer service support team order account number card payment invoice ticket new old united states kingdom north south east west central general manager department office company bank city state street road monday tuesday wednesday thursday friday saturday sunday january february march april may june july august september october november december today tomorrow yesterday morning evening note subject re fw fwd dr mr mrs ms sir madam yes no ok okay good great happy merry";

static NOT_NAME_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| NOT_NAMES.split(' ').collect());
static FIRST_NAME_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| FIRST_NAMES.split(' ').collect());

fn is_common_capitalised(w: &str) -> bool {
    let lower = w
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_ascii_lowercase();
    NOT_NAME_SET.contains(lower.as_str())
}

fn is_first_name(w: &str) -> bool {
    FIRST_NAME_SET.contains(w.to_ascii_lowercase().as_str())
}

static RECOGNIZERS: LazyLock<Vec<Recognizer>> = LazyLock::new(|| {
    let ctx = |words: &str| Some(re(&format!(r"(?i)\b(?:{words})\b")));
    let r =
        |kind, pattern: &str, group, context, validate: fn(&str) -> bool, priority| Recognizer {
            kind,
            regex: re(pattern),
            group,
            context,
            validate,
            priority,
        };
    vec![
        r(
            "EMAIL",
            r"(?i)\b[a-z0-9._%+\-]+@[a-z0-9.\-]+\.[a-z]{2,}\b",
            0,
            None,
            any,
            9,
        ),
        r(
            "URL",
            r"(?i)\b(?:https?://|www\.)[^\s<>()\[\]{}]+[^\s<>()\[\]{}.,;:!?'\x22]",
            0,
            None,
            any,
            8,
        ),
        r(
            "URL",
            r"(?i)\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:com|org|net|edu|gov|io|co|uk|ca|de|fr|es|nl|eu|au|jp|ch|se|dk|fi|pl|nz|ie|br|info|biz|app|dev|ai)\b(?:/[^\s<>()\[\]{}]*[^\s<>()\[\]{}.,;:!?'\x22])?",
            0,
            None,
            any,
            6,
        ),
        r(
            "AWS_ACCESS_KEY",
            r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b",
            0,
            None,
            any,
            9,
        ),
        r(
            "AWS_SECRET_KEY",
            r"(?:^|[^A-Za-z0-9/+])([A-Za-z0-9/+]{40})(?:$|[^A-Za-z0-9/+])",
            1,
            None,
            secret_key,
            8,
        ),
        r(
            "IP_ADDRESS",
            r"\b(?:\d{1,3}\.){3}\d{1,3}\b",
            0,
            None,
            ipv4,
            7,
        ),
        r(
            "IP_ADDRESS",
            r"(?i)\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b|(?i)\b(?:[0-9a-f]{1,4}:){1,6}:[0-9a-f]{1,4}\b",
            0,
            None,
            any,
            7,
        ),
        r(
            "MAC_ADDRESS",
            r"(?i)\b[0-9a-f]{2}(?:[:-][0-9a-f]{2}){5}\b|(?i)\b[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}\b",
            0,
            None,
            any,
            8,
        ),
        r(
            "CREDIT_DEBIT_CARD_NUMBER",
            r"\b\d(?:[ -]?\d){12,18}\b",
            0,
            None,
            card,
            8,
        ),
        r(
            "CREDIT_DEBIT_CARD_CVV",
            r"(?i)\b(?:cvv2?|cvc2?|csc|cid|cvn|security code|card code|card verification(?: value| code)?|(?:3|4|three|four)[- ]digit (?:security )?(?:code|number))\b\D{0,25}?(\d{3,4})\b",
            1,
            None,
            any,
            7,
        ),
        r(
            "CREDIT_DEBIT_CARD_EXPIRY",
            r"(?i)\b(?:exp(?:iry|iration|ires|ired|\.)?|exp date|valid (?:thru|through|until)|good (?:thru|through)|expiration date|expiry date|runs out|end date)\b\D{0,20}?\b((?:0?[1-9]|1[0-2])\s?[/-]\s?(?:\d{2}|20\d{2})|(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|jun(?:e)?|jul(?:y)?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?\s+(?:20)?\d{2})\b",
            1,
            None,
            any,
            7,
        ),
        // A card dump: "NUMBER MM/YY CVV" with no cue words.
        r(
            "CREDIT_DEBIT_CARD_EXPIRY",
            r"\b((?:0?[1-9]|1[0-2])/(?:\d{2}|20\d{2}))(?:$|[^/\d])",
            1,
            ctx(r"\b\d{4}[ -]?\d{4,6}[ -]?\d{4,5}(?:[ -]?\d{1,4})?\b"),
            any,
            6,
        ),
        r(
            "CREDIT_DEBIT_CARD_CVV",
            r"\b\d{4}[ -]?\d{4,6}[ -]?\d{4,5}(?:[ -]?\d{1,4})?[ ,;|]+(?:0?[1-9]|1[0-2])/(?:\d{2}|20\d{2})[ ,;|]+(\d{3,4})\b",
            1,
            None,
            any,
            7,
        ),
        r(
            "US_SOCIAL_SECURITY_NUMBER",
            r"\b\d{3}-\d{2}-\d{4}\b|\b\d{3} \d{2} \d{4}\b",
            0,
            None,
            ssn,
            7,
        ),
        r(
            "US_SOCIAL_SECURITY_NUMBER",
            r"\b\d{9}\b",
            0,
            ctx(r"ssn|social security(?: number| no)?|ss#"),
            ssn,
            7,
        ),
        r(
            "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER",
            r"\b9\d{2}[- ]?[5-9]\d[- ]?\d{4}\b",
            0,
            None,
            itin,
            8,
        ),
        r(
            "CA_SOCIAL_INSURANCE_NUMBER",
            r"\b\d{3}[- ]\d{3}[- ]\d{3}\b",
            0,
            None,
            sin,
            6,
        ),
        r(
            "CA_SOCIAL_INSURANCE_NUMBER",
            r"\b\d{9}\b",
            0,
            ctx(r"sin|social insurance(?: number)?|nas|assurance sociale"),
            sin,
            8,
        ),
        r(
            "CA_HEALTH_NUMBER",
            r"\b\d{4}[- ]?\d{3}[- ]?\d{3}(?:[- ]?[A-Z]{2})?\b",
            0,
            ctx(
                r"health (?:card|number|no|insurance number)|ohip|hcn|phn|personal health number|services card|carte santé|care card|assurance maladie|ramq|medicare",
            ),
            any,
            9,
        ),
        r(
            "UK_NATIONAL_HEALTH_SERVICE_NUMBER",
            r"\b\d{3} ?\d{3} ?\d{4}\b",
            0,
            None,
            nhs,
            6,
        ),
        r(
            "CA_HEALTH_NUMBER",
            r"\b[A-Z]{4} ?\d{4} ?\d{4}\b",
            0,
            ctx(r"ramq|assurance maladie|health (?:card|number|no)|carte"),
            any,
            9,
        ),
        r(
            "UK_NATIONAL_HEALTH_SERVICE_NUMBER",
            r"\b\d{3}-\d{3}-\d{4}\b",
            0,
            ctx(r"nhs|health service|gp|surgery|nhs number|nhs no"),
            nhs,
            9,
        ),
        r(
            "UK_NATIONAL_INSURANCE_NUMBER",
            r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b",
            0,
            None,
            nino,
            8,
        ),
        r(
            "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER",
            r"\b\d{5} ?\d{5}\b",
            0,
            ctx(r"utr|unique taxpayer reference|taxpayer reference|tax reference"),
            any,
            9,
        ),
        r(
            "INTERNATIONAL_BANK_ACCOUNT_NUMBER",
            r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
            0,
            None,
            iban,
            9,
        ),
        r(
            "SWIFT_CODE",
            r"\b[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?\b",
            0,
            ctx(r"swift|bic|swift code|bic code|sort code"),
            swift,
            7,
        ),
        r(
            "SWIFT_CODE",
            r"\b[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?\b",
            0,
            None,
            |s| swift(s) && has_digit(&s[6..]),
            5,
        ),
        r(
            "US_BANK_ROUTING_NUMBER",
            r"\b[0-36-8]\d{8}\b",
            0,
            None,
            aba,
            6,
        ),
        r(
            "US_BANK_ACCOUNT_NUMBER",
            r"\b\d{8,17}\b",
            0,
            ctx(r"account|acct|a/c|checking|savings|dda"),
            any,
            9,
        ),
        r(
            "US_BANK_ROUTING_NUMBER",
            r"\b\d{9}\b",
            0,
            ctx(r"routing(?: number| no| #)?|rtn|aba|transit(?: number)?|rt#?"),
            aba,
            9,
        ),
        r(
            "DRIVER_ID",
            r"\b\d{3} \d{3} \d{3}\b",
            0,
            ctx(r"driver'?s? licen[cs]e|driving licen[cs]e|driver id|dl#?|licen[cs]e"),
            any,
            9,
        ),
        r(
            "US_PASSPORT_NUMBER",
            r"\b[A-Z]?\d{8,9}\b",
            0,
            ctx(r"passport(?: number| no| #)?|doc(?:ument)? (?:no|number|#)|travel document"),
            any,
            8,
        ),
        r(
            "DRIVER_ID",
            r"\b[A-Z0-9](?:[A-Z0-9-]){4,16}[A-Z0-9]\b",
            0,
            ctx(
                r"driver'?s? licen[cs]e(?: number| no| #)?|driving licen[cs]e(?: number)?|driver id|dl(?: number| no| #)?#?|licen[cs]e(?: number| no| #)?|dmv",
            ),
            |s| has_digit(s) && !is_date(s),
            9,
        ),
        r(
            "LICENSE_PLATE",
            r"\b[A-Z0-9]{2,4}[- ]?[A-Z0-9]{2,4}\b",
            0,
            ctx(
                r"licen[cs]e plate|number plate|plate(?: number| no)?|registration(?: number| plate)?|registered|reg(?: no| number)?|tag number|vehicle|pcn|parking ticket|toll",
            ),
            |s| {
                has_digit(s)
                    && s.chars().any(|c| c.is_ascii_alphabetic())
                    && s.chars().filter(char::is_ascii_alphanumeric).count() >= 5
            },
            9,
        ),
        r(
            "VEHICLE_IDENTIFICATION_NUMBER",
            r"\b[A-HJ-NPR-Z0-9]{17}\b",
            0,
            None,
            vin,
            8,
        ),
        r(
            "VEHICLE_IDENTIFICATION_NUMBER",
            r"\b[A-HJ-NPR-Z0-9]{17}\b",
            0,
            ctx(r"vin|vehicle identification(?: number)?|chassis(?: number)?"),
            has_digit,
            9,
        ),
        r(
            "PHONE",
            r"(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\b\d{3}[\s.-])\d{3}[\s.-]\d{4}\b",
            0,
            None,
            any,
            5,
        ),
        r(
            "PHONE",
            r"\+\d{1,3}(?:\s?\(0\))?(?:[\s.-]?\(?\d{1,8}\)?){1,5}\b",
            0,
            None,
            |s| (8..=15).contains(&digits(s).len()),
            5,
        ),
        r(
            "PHONE",
            r"\b0\d{2,4}[\s-]\d{3,4}[\s-]?\d{3,4}\b",
            0,
            None,
            |s| (10..=11).contains(&digits(s).len()),
            5,
        ),
        r("PHONE", r"\+\d{7,14}\b", 0, None, any, 5),
        r(
            "PHONE",
            r"\b\d{10,11}\b",
            0,
            ctx(r"phone|tel|telephone|mobile|cell|call|text|fax|whatsapp"),
            any,
            5,
        ),
        r(
            "PIN",
            r"\b(\d{4,8})\b",
            1,
            ctx(r"pin(?: code| number)?"),
            any,
            9,
        ),
        r(
            "PASSWORD",
            r"(?i)\b(?:password|passwd|pwd|pw|passcode|pass phrase|passphrase|pin code)\b(?:\s+(?:for|to|of|on)(?:\s+[\w.-]+){1,3}?)?(?:\s*[:=]\s*|\s+(?:is|was|will be|=)\s+)[\x22']?([^\s\x22']{3,})",
            1,
            None,
            |s| {
                !matches!(
                    s.to_ascii_lowercase().as_str(),
                    "the" | "is" | "not" | "was" | "your" | "my"
                )
            },
            9,
        ),
        r(
            "PASSWORD",
            r"(?i)\b(?:password|passwd|pwd|passcode|passphrase)\s+[\x22'`]([^\s\x22'`]{3,})[\x22'`]",
            1,
            None,
            any,
            9,
        ),
        r(
            "USERNAME",
            r"(?i)\b(?:username|user name|user id|userid|login|handle|screen name)\b(?:\s*[:=]\s*|\s+(?:is|was)\s+)([A-Za-z0-9._@\-]{3,})",
            1,
            None,
            |s| !s.eq_ignore_ascii_case("the"),
            9,
        ),
        r(
            "USERNAME",
            r"\b(?:[Uu]ser|[Aa]ccount|[Uu]sername|[Hh]andle|[Gg]rant|[Ii]'m|[Ii] am|[Aa]dd|[Ff]ollow|[Ll]ogin|[Ll]ogged in as|[Ss]igned in as)\s+([A-Za-z][A-Za-z0-9]*(?:[._][A-Za-z0-9]+)+|[A-Za-z]+\d+|[a-z]+[A-Z][A-Za-z]*\d*)\b",
            1,
            None,
            any,
            7,
        ),
        r(
            "PASSWORD",
            r"(?i)\bpass\s*[:=]\s*([^\s\x22']{3,})",
            1,
            None,
            any,
            9,
        ),
        r(
            "USERNAME",
            r"(?i)\b(?:user|usr|uid|login|log in as|logged in as|signed in as|sign in as)\s*[:=]?\s*['\x22]([A-Za-z0-9._@-]{3,})['\x22]",
            1,
            None,
            any,
            8,
        ),
        r(
            "USERNAME",
            r"(?i)\b(?:user|usr|uid|login)\s*[:=]\s*([A-Za-z0-9._@-]{3,})",
            1,
            None,
            any,
            8,
        ),
        r(
            "USERNAME",
            r"(?i)\b(?:log in as|logged in as|signed in as|sign in as)\s+([A-Za-z0-9._-]{3,})",
            1,
            None,
            any,
            8,
        ),
        r("USERNAME", r"\bssh\s+([A-Za-z0-9._-]+)@", 1, None, any, 8),
        r(
            "USERNAME",
            r"\b([A-Za-z][A-Za-z0-9]*(?:[._][A-Za-z0-9]+)+|[A-Za-z]+\d{2,}|[a-z]+[A-Z][A-Za-z]*\d*)\b",
            1,
            ctx(r"gamertag|username|user name|handle|screen name|user id|account name|login"),
            any,
            6,
        ),
        r(
            "USERNAME",
            r"(?:^|[\s(])(@[A-Za-z0-9_]{3,30})\b",
            1,
            None,
            any,
            4,
        ),
        r(
            "AGE",
            r"(?i)\b(\d{1,3}(?:\s|-)(?:years?|yrs?|months?|weeks?))(?:\s|-)(?:old|of age)\b",
            1,
            None,
            |s| leading_number(s).is_some_and(|a| a <= 130),
            8,
        ),
        r(
            "AGE",
            r"(?i)\b(\d{1,3}\s?(?:yo|y/o|y\.o\.))(?:\b|$)",
            1,
            None,
            |s| leading_number(s).is_some_and(|a| a <= 130),
            8,
        ),
        r(
            "AGE",
            r"(?i)\b(?:at|aged?|now)\s+(\d{1,3}\s?(?:yrs?|years?))\b",
            1,
            None,
            |s| leading_number(s).is_some_and(|a| a <= 130),
            7,
        ),
        r(
            "AGE",
            r"(?i)\b(?:age[ds]?|aged|age of|turned|turning|turns)\s*[:=]?\s*(\d{1,3})\b",
            1,
            None,
            |s| s.parse::<u32>().is_ok_and(|a| a <= 130),
            8,
        ),
        r(
            "AGE",
            r"(?i)\b(?:i am|i'm|he is|she is|he's|she's|they are)\s+(\d{1,3})\b(?:\s*(?:years|yrs|y/o|yo)\b)?",
            1,
            None,
            |s| s.parse::<u32>().is_ok_and(|a| (1..=120).contains(&a)),
            6,
        ),
        r(
            "ADDRESS",
            r"\b\d{1,6}(?:\s+[A-Z][a-zA-Z]+){1,4}\s+(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Ter|Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Close|Crescent|Row|Trail|Alley)\b\.?(?:,?\s+(?:Apt|Apartment|Suite|Ste|Unit|#)\.?\s*[A-Za-z0-9-]+)?(?:,\s*[A-Z][a-zA-Z]+(?:\s+[A-Z][a-zA-Z]+)*)?(?:,\s*[A-Z]{2})?(?:\s+\d{5}(?:-\d{4})?)?",
            0,
            None,
            any,
            6,
        ),
        r(
            "ADDRESS",
            r"\b[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b",
            0,
            ctx(r"address|postcode|post code|lives at|live at|located at"),
            any,
            6,
        ),
        r(
            "NAME",
            r"\b(?:Mr|Mrs|Ms|Miss|Dr|Prof|Sir|Madam|Mx)\.?\s+((?:O['’])?\p{Lu}\p{Ll}+(?:[\s-](?:O['’])?\p{Lu}\p{Ll}+){0,2})",
            1,
            None,
            any,
            7,
        ),
        r(
            "NAME",
            r"(?i:\b(?:my name is|name is|name's|i am called|call me|this is|signed|regards,|sincerely,|dear|name\s*:))\s+(\p{Lu}\p{Ll}+(?:[\s-]\p{Lu}\p{Ll}+){0,2})",
            1,
            None,
            |s| !s.split_whitespace().any(is_common_capitalised),
            7,
        ),
        r(
            "NAME",
            r"\b(\p{Lu}\p{Ll}+(?:\s[A-Z]\.)?\s\p{Lu}\p{Ll}+(?:-\p{Lu}\p{Ll}+)?)\b",
            1,
            None,
            |s| s.split_whitespace().next().is_some_and(is_first_name),
            6,
        ),
        r(
            "NAME",
            r"\b(?:(?:Hi|Hello|Hey|Dear|Thanks|Thank you|Thanks again|Cheers|Regards|Attn|belonging to|referral for|forward this to|on behalf of|assigned to|signed by|approved by|social for|client|customer|patient|tenant|employee|cardholder|applicant)[,:]?|(?:Contact|Patient|Employee|Traveler|Traveller|Passenger|Customer|Client|Cardholder|Applicant|Tenant|Guest|Attention|Name|Full name|Signed|From|To|Cc):)\s+(\p{Lu}\p{Ll}+(?:[-'’]\p{L}\p{Ll}+)?(?:\s+[A-Z]\.)?(?:\s+(?:(?:van|von|de|der|den|da|di|del|la|le|bin|al)\s+)*(?:O['’]|Mc|Mac)?\p{Lu}\p{Ll}+(?:-\p{Lu}\p{Ll}+)?))\b",
            1,
            None,
            |s| !s.split_whitespace().any(is_common_capitalised),
            6,
        ),
        r(
            "NAME",
            r"(?m)(?:^|[.!?:]\s+)(\p{Lu}\p{Ll}+(?:-\p{Ll}+)?\s+(?:O['’])?\p{Lu}\p{Ll}+)(?:,|\s+-|\s+\(|\s+(?:presented|filed|called|sent|said|asked|wrote|emailed|reported|requested|has|had|is|was|will|signed|paid|lives|works))",
            1,
            None,
            |s| !s.split_whitespace().any(is_common_capitalised),
            5,
        ),
        r("NAME", r"\b(\p{Lu}\p{Ll}+)\b", 1, None, is_first_name, 3),
    ]
});

/// True when digits continue the match on either side ("4111 1111 1111 1111"
/// is one number, not a phone number inside it).
fn in_digit_run(text: &str, start: usize, end: usize) -> bool {
    let continues =
        |mut c: std::iter::Take<Box<dyn Iterator<Item = char> + '_>>| match (c.next(), c.next()) {
            (Some(a), _) if a.is_ascii_digit() => true,
            (Some(' ' | '-' | '.'), Some(b)) => b.is_ascii_digit(),
            _ => false,
        };
    let after: Box<dyn Iterator<Item = char>> = Box::new(text[end..].chars());
    let before: Box<dyn Iterator<Item = char>> = Box::new(text[..start].chars().rev());
    continues(after.take(2)) || continues(before.take(2))
}

/// How far before a match its context words may be.
const CONTEXT_BYTES: usize = 48;

/// Every PII entity in `text` among `kinds` (all types when `None`), without
/// overlaps, in text order.
#[must_use]
pub fn find(text: &str, kinds: Option<&[&str]>) -> Vec<Entity> {
    // (entity, priority, distance to its cue word: 0 without a cue; cues after
    // the value count as farther than any cue before it).
    let mut found: Vec<(Entity, u8, usize)> = Vec::new();
    for r in RECOGNIZERS.iter() {
        if kinds.is_some_and(|k| !k.contains(&r.kind)) {
            continue;
        }
        for caps in r.regex.captures_iter(text) {
            let Some(m) = caps.get(r.group) else {
                continue;
            };
            if !(r.validate)(m.as_str())
                || (r.kind == "PHONE" && in_digit_run(text, m.start(), m.end()))
            {
                continue;
            }
            let mut cue = 0;
            if let Some(ctx) = &r.context {
                // The cue may come before ("SSN 123…") or after ("… is my SSN").
                let mut from = m.start().saturating_sub(CONTEXT_BYTES);
                while !text.is_char_boundary(from) {
                    from -= 1;
                }
                let mut to = (m.end() + CONTEXT_BYTES).min(text.len());
                while !text.is_char_boundary(to) {
                    to += 1;
                }
                if let Some(c) = ctx.find_iter(&text[from..m.start()]).last() {
                    cue = m.start() - (from + c.end());
                } else if let Some(c) = ctx.find(&text[m.end()..to]) {
                    cue = CONTEXT_BYTES + c.start();
                } else {
                    continue;
                }
            }
            found.push((
                Entity {
                    kind: r.kind,
                    start: m.start(),
                    end: m.end(),
                },
                r.priority,
                cue,
            ));
        }
    }
    // Highest priority first, then the nearest cue, then longest; keep what
    // does not overlap a kept one.
    found.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then(a.2.cmp(&b.2))
            .then((b.0.end - b.0.start).cmp(&(a.0.end - a.0.start)))
            .then(a.0.start.cmp(&b.0.start))
    });
    let mut kept: Vec<Entity> = Vec::new();
    for (e, _, _) in found {
        if kept.iter().all(|k| e.end <= k.start || e.start >= k.end) {
            kept.push(e);
        }
    }
    kept.sort_by_key(|e| e.start);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(&'static str, String)> {
        find(text, None)
            .into_iter()
            .map(|e| (e.kind, text[e.start..e.end].to_string()))
            .collect()
    }

    fn has(text: &str, kind: &str, value: &str) {
        let k = kinds(text);
        assert!(
            k.iter().any(|(t, v)| *t == kind && v == value),
            "{kind} {value:?} not found in {text:?}: {k:?}"
        );
    }

    #[test]
    fn built_in_patterns_compile() {
        for r in RECOGNIZERS.iter() {
            assert_ne!(r.regex.as_str(), "$^", "{} pattern failed", r.kind);
        }
        let mut covered: Vec<&str> = RECOGNIZERS.iter().map(|r| r.kind).collect();
        covered.dedup();
        for t in PII_TYPES {
            assert!(covered.contains(&t), "{t} has no recognizer");
        }
    }

    #[test]
    fn checksums_accept_valid_and_reject_random() {
        assert!(luhn("4111 1111 1111 1111"));
        assert!(!luhn("4111 1111 1111 1112"));
        assert!(card("4111111111111111"));
        assert!(!card("1234567812345678"));
        assert!(iban("GB82 WEST 1234 5698 7654 32"));
        assert!(!iban("GB82 WEST 1234 5698 7654 33"));
        assert!(
            !iban("GB１２ABCDEFGHIJ"),
            "full-width digits must not panic"
        );
        assert!(find("GB１２ABCDEFGHIJ and ９４３ ４７６ ５９１９", None).len() < 3);
        assert!(aba("011000015"));
        assert!(!aba("011000016"));
        assert!(nhs("943 476 5919"));
        assert!(!nhs("943 476 5918"));
        assert!(vin("1M8GDM9AXKP042788"));
        assert!(!vin("1M8GDM9A1KP042788"));
        assert!(sin("130 692 544"));
        assert!(!sin("130 692 545"));
        assert!(!ssn("000-12-3456") && ssn("123-45-6789"));
    }

    #[test]
    fn finds_each_kind_in_context() {
        has(
            "mail me at jane.doe@example.com today",
            "EMAIL",
            "jane.doe@example.com",
        );
        has(
            "card 4111-1111-1111-1111 exp 09/27 cvv 123",
            "CREDIT_DEBIT_CARD_NUMBER",
            "4111-1111-1111-1111",
        );
        has(
            "card 4111-1111-1111-1111 exp 09/27 cvv 123",
            "CREDIT_DEBIT_CARD_EXPIRY",
            "09/27",
        );
        has(
            "card 4111-1111-1111-1111 exp 09/27 cvv 123",
            "CREDIT_DEBIT_CARD_CVV",
            "123",
        );
        has(
            "my ssn is 123-45-6789",
            "US_SOCIAL_SECURITY_NUMBER",
            "123-45-6789",
        );
        has("call (415) 555-0132 now", "PHONE", "(415) 555-0132");
        has(
            "server at 192.168.10.4 is down",
            "IP_ADDRESS",
            "192.168.10.4",
        );
        has(
            "key AKIAIOSFODNN7EXAMPLE leaked",
            "AWS_ACCESS_KEY",
            "AKIAIOSFODNN7EXAMPLE",
        );
        has(
            "IBAN GB82 WEST 1234 5698 7654 32 please",
            "INTERNATIONAL_BANK_ACCOUNT_NUMBER",
            "GB82 WEST 1234 5698 7654 32",
        );
        has("Dear Mr. Smith, thanks", "NAME", "Smith");
        has("Dear Mr. O'Brien, thanks", "NAME", "O'Brien");
        has(
            "Contact: José Müller <jm@example.com>",
            "NAME",
            "José Müller",
        );
        has(
            "I live at 42 Wallaby Way, Sydney",
            "ADDRESS",
            "42 Wallaby Way, Sydney",
        );
        has("my PIN is 4821", "PIN", "4821");
        has("password: hunter2!", "PASSWORD", "hunter2!");
        has(
            "visit https://example.com/a?b=c.",
            "URL",
            "https://example.com/a?b=c",
        );
        has(
            "NI number AB 12 34 56 C",
            "UK_NATIONAL_INSURANCE_NUMBER",
            "AB 12 34 56 C",
        );
        has(
            "VIN 1M8GDM9AXKP042788",
            "VEHICLE_IDENTIFICATION_NUMBER",
            "1M8GDM9AXKP042788",
        );
        has("she is 34 years old", "AGE", "34 years");
        has("MAC 00:1A:2B:3C:4D:5E", "MAC_ADDRESS", "00:1A:2B:3C:4D:5E");
    }

    #[test]
    fn random_numbers_are_not_cards_or_ssns() {
        assert!(kinds("order 1234567812345678 shipped").is_empty());
        assert!(kinds("tracking 4111 1111 1111 1112 please").is_empty());
        has("ring +44 20 7946 0958 today", "PHONE", "+44 20 7946 0958");
        has("ring 020 7946 0958 today", "PHONE", "020 7946 0958");
        assert!(kinds("the year 2024 had 365 days").is_empty());
    }
}
