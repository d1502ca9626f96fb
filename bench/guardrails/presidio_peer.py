"""Microsoft Presidio as the peer in the PII benchmark, offline and NER-free.

The PII benchmark compares basalt's pattern-and-checksum detectors with
Presidio's analyzer on the same texts (see pii_data.py). To compare like with
like, and to run without downloading anything, Presidio runs with its no-op
NLP engine: no spaCy/stanza/transformers model is loaded, so only its
regex/pattern recognizers (with their checksum validators) take part. The
NER-backed entities (PERSON, LOCATION, ...) therefore never fire.

    p = Presidio()                  # Presidio's default English registry
    p = Presidio(extended=True)     # + the disabled-by-default recognizers
                                    #   that map to Bedrock types
    p.analyze(text) -> [{"type": BEDROCK_TYPE, "start", "end", "score",
                         "presidio_type"}]
    p.covered()     -> set of Bedrock types this setup has a recognizer for

Requires `pip install presidio-analyzer` (written against 2.2.366). pip
pulls in spaCy as a dependency, but no spaCy model is needed or loaded.

How the no-op engine is built (presidio-analyzer ships it as
`presidio_analyzer.nlp_engine.NoOpNlpEngine`, registered with
NlpEngineProvider under the name "no_op"; presidio_analyzer/conf/no_op.yaml
is the same configuration as a file):

    NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "no_op",
        "models": [{"lang_code": "en", "model_name": "no_op"}],
    }).create_engine()

AnalyzerEngine then skips registering the spaCy NER recognizer for it.
Because the no-op engine yields no tokens or lemmas, Presidio's context
enhancer cannot raise scores from words in the text ("my SSN is ...");
context-dependent recognizers keep their low base scores.

Score threshold: Presidio's default, 0 (AnalyzerEngine's
`default_score_threshold=0`; no predefined recognizer sets its own
threshold), so every candidate a recognizer keeps after validation is
returned, low-confidence ones included. Each result carries Presidio's score
so a caller can apply a stricter cut.

Offline: Presidio's EmailRecognizer validates domains with `tldextract`,
whose module-level extractor fetches the Public Suffix List over the network
on first use (falling back to its bundled snapshot after the fetch fails).
This module points that extractor at no URLs so it uses the snapshot directly.

Run `python presidio_peer.py` for the recognizer list, coverage, sample
results and timing.
"""

from __future__ import annotations

import logging
import time

import tldextract.tldextract
from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
from presidio_analyzer.nlp_engine import NlpEngineProvider
from presidio_analyzer.predefined_recognizers import (
    AbaRoutingRecognizer,
    CaSinRecognizer,
    UkDrivingLicenceRecognizer,
    UkNinoRecognizer,
    UkVehicleRegistrationRecognizer,
)

# Use tldextract's bundled suffix-list snapshot; never fetch it.
tldextract.tldextract.TLD_EXTRACTOR.suffix_list_urls = ()

# Presidio entity name -> Bedrock PII type. Presidio entities not listed here
# (DATE_TIME, CRYPTO, UUID, MEDICAL_LICENSE, ...) have no Bedrock counterpart
# and are dropped from results.
ENTITY_MAP = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CREDIT_DEBIT_CARD_NUMBER",
    "US_SSN": "US_SOCIAL_SECURITY_NUMBER",
    "IBAN_CODE": "INTERNATIONAL_BANK_ACCOUNT_NUMBER",
    "IP_ADDRESS": "IP_ADDRESS",
    "URL": "URL",
    "MAC_ADDRESS": "MAC_ADDRESS",
    "US_BANK_NUMBER": "US_BANK_ACCOUNT_NUMBER",
    "US_DRIVER_LICENSE": "DRIVER_ID",
    "US_ITIN": "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER",
    "US_PASSPORT": "US_PASSPORT_NUMBER",
    "UK_NHS": "UK_NATIONAL_HEALTH_SERVICE_NUMBER",
    # Registered only with extended=True (disabled in Presidio's default config):
    "ABA_ROUTING_NUMBER": "US_BANK_ROUTING_NUMBER",
    "UK_NINO": "UK_NATIONAL_INSURANCE_NUMBER",
    "CA_SIN": "CA_SOCIAL_INSURANCE_NUMBER",
    "UK_VEHICLE_REGISTRATION": "LICENSE_PLATE",
    "UK_DRIVING_LICENCE": "DRIVER_ID",
    # NER entity: never produced with the no-op engine, mapped for completeness.
    "PERSON": "NAME",
}

# Recognizers Presidio ships disabled for English whose entities map to a
# Bedrock type; added when extended=True.
EXTENDED_RECOGNIZERS = [
    AbaRoutingRecognizer,
    UkNinoRecognizer,
    CaSinRecognizer,
    UkVehicleRegistrationRecognizer,
    UkDrivingLicenceRecognizer,
]

LANGUAGE = "en"


def no_op_nlp_engine():
    """Presidio's NLP engine that loads no model and produces no artifacts."""
    return NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "no_op",
            "models": [{"lang_code": LANGUAGE, "model_name": "no_op"}],
        }
    ).create_engine()


class Presidio:
    """Presidio's pattern recognizers, mapped onto Bedrock's PII types."""

    def __init__(self, extended: bool = False):
        """Build the analyzer.

        extended=False: exactly the recognizers Presidio's default config
        enables for English (what `AnalyzerEngine()` loads), minus the spaCy
        NER recognizer, which the no-op engine has no model for.
        extended=True: also the disabled-by-default recognizers in
        EXTENDED_RECOGNIZERS (ABA routing, UK NINO, Canadian SIN, UK vehicle
        registration, UK driving licence).
        """
        nlp_engine = no_op_nlp_engine()
        registry = RecognizerRegistry(supported_languages=[LANGUAGE])
        # Loading the predefined list logs a warning for each non-English
        # recognizer it skips (es, it, pl, ...); that is expected, so quiet it.
        log = logging.getLogger("presidio-analyzer")
        level = log.level
        log.setLevel(logging.ERROR)
        try:
            registry.load_predefined_recognizers(languages=[LANGUAGE], nlp_engine=nlp_engine)
        finally:
            log.setLevel(level)
        if extended:
            for cls in EXTENDED_RECOGNIZERS:
                registry.add_recognizer(cls(supported_language=LANGUAGE))
        self.extended = extended
        self.engine = AnalyzerEngine(
            registry=registry,
            nlp_engine=nlp_engine,
            supported_languages=[LANGUAGE],
            # Presidio's own default, spelled out: keep every scored result.
            default_score_threshold=0,
        )

    def recognizers(self) -> list[tuple[str, list[str]]]:
        """(recognizer name, Presidio entities) for each English recognizer."""
        recs = self.engine.get_recognizers(language=LANGUAGE)
        return sorted((r.name, list(r.supported_entities)) for r in recs)

    def covered(self) -> set[str]:
        """Bedrock types for which this setup registers a recognizer."""
        return {
            ENTITY_MAP[e]
            for _, entities in self.recognizers()
            for e in entities
            if e in ENTITY_MAP
        }

    def analyze(self, text: str) -> list[dict]:
        """Presidio's findings in `text` that map to a Bedrock type.

        Offsets are character offsets, end exclusive. Overlapping results of
        different types (Presidio can report both UK_NHS and PHONE_NUMBER on
        one number) are all kept; sorted by start, then end.
        """
        results = self.engine.analyze(text=text, language=LANGUAGE)
        out = [
            {
                "type": ENTITY_MAP[r.entity_type],
                "start": r.start,
                "end": r.end,
                "score": r.score,
                "presidio_type": r.entity_type,
            }
            for r in results
            if r.entity_type in ENTITY_MAP
        ]
        return sorted(out, key=lambda d: (d["start"], d["end"], d["type"]))


_DEFAULT: Presidio | None = None


def covered(extended: bool = False) -> set[str]:
    """Bedrock types Presidio covers in this setup (builds an analyzer once)."""
    global _DEFAULT
    if extended:
        return Presidio(extended=True).covered()
    if _DEFAULT is None:
        _DEFAULT = Presidio()
    return _DEFAULT.covered()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)

    SAMPLES = [
        "Hi, my name is Amara Okafor, email amara.okafor@gmail.com, phone (415) 672-0198.",
        "Card 4539 1488 0343 6467 exp 09/27, CVV 123.",
        "My SSN is 253-58-4698 and my ITIN is 953-97-6642.",
        "Wire to IBAN DE57 6430 0196 0376 7249 91, routing 127250063.",
        "Server log: connection from 203.0.113.45, MAC 3c:22:fb:9a:41:7e.",
        "NHS number 401 113 2756, NINO HG 44 85 66 C, SIN 420 600 116.",
        "Visit https://docs.quillon.dev/getting-started for the guide.",
        "The store opens at 9:30 and order #1234567 shipped on 2024-05-17.",
    ]

    for extended in (True, False):  # the default setup last: used below
        t0 = time.perf_counter()
        p = Presidio(extended=extended)
        build = time.perf_counter() - t0
        print(f"=== Presidio(extended={extended}): built in {build:.2f}s")
        for name, entities in p.recognizers():
            mapped = ", ".join(f"{e}->{ENTITY_MAP.get(e, '(dropped)')}" for e in entities)
            print(f"  {name:36} {mapped}")
        print(f"  covered ({len(p.covered())} of 31): {sorted(p.covered())}\n")

    for text in SAMPLES:
        print(text)
        for r in p.analyze(text):
            print(f"    {r['type']:36} {text[r['start']:r['end']]!r:32} "
                  f"score={r['score']:.2f} ({r['presidio_type']})")

    # Timing on the benchmark's own texts.
    try:
        from pii_data import generate, negatives
    except ImportError:  # run from elsewhere
        import os
        import sys

        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from pii_data import generate, negatives

    texts = [i["text"] for i in generate()] + [n["text"] for n in negatives()]
    p.analyze(texts[0])  # warm-up
    t0 = time.perf_counter()
    for text in texts:
        p.analyze(text)
    elapsed = time.perf_counter() - t0
    print(f"\nanalyze: {len(texts)} texts in {elapsed:.2f}s "
          f"({elapsed / len(texts) * 1e3:.2f} ms per text, "
          f"{sum(map(len, texts)) / elapsed / 1e3:.1f} k chars/s)")
