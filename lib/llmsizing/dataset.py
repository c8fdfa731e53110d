"""Dataset size to training tokens.

A fine-tuning dataset is given as bytes of raw text (``1GB``; a bare ``1G`` also means bytes,
as in the customer's request), as samples (``1K samples``) or as tokens (``15.6T tokens``).
Bytes become tokens through a named bytes-per-token figure for the language and the model's
tokenizer family (``assumptions/planner.py``, each with its source); samples through a
tokens-per-sample figure. Epochs multiply, and the batching scheme divides by the share of
real tokens in what the GPUs process:

    text_tokens  = bytes / bytes_per_token           (or samples × tokens_per_sample, or tokens)
    train_tokens = text_tokens × epochs / efficiency  (efficiency: packing ≈ 0.98, padding ≈ 0.5)

``train_tokens`` is what the FLOP count and the time use; ``text_tokens`` is what the
customer's data holds. ``DatasetSize.explanation`` says in one sentence how one became the other.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from llmsizing.assumptions import Assumptions
from llmsizing.errors import ScenarioError
from llmsizing.specs import ModelSpec
from llmsizing.units import DATA_FORMS, GB, KB, MB, TB, DataSize, fmt_count, parse_data_size

LANGUAGES = ("en", "zh", "code", "mixed")
TOKENIZER_FAMILIES = ("llama3", "llama2", "qwen2", "deepseek_v3", "gemma")
TOKENIZER_NAMES = {
    "llama3": "Llama 3 tokenizer (128K vocabulary)",
    "llama2": "32K SentencePiece tokenizer (Llama 2 / Mistral)",
    "qwen2": "Qwen2 tokenizer (151K vocabulary)",
    "deepseek_v3": "DeepSeek-V3 tokenizer (129K vocabulary)",
    "gemma": "Gemma tokenizer (256K vocabulary)",
}
LANGUAGE_NAMES = {"en": "English text", "zh": "Chinese text", "code": "source code", "mixed": "mixed Chinese/English text"}
EPOCH_FORMS = "a positive number of passes over the data, e.g. 1, 2 or 0.5"

# Vocabularies of 100K tokens and more are the Llama 3 class; the 32K SentencePiece ones the Llama 2 class.
_LARGE_VOCAB = 100_000


def tokenizer_family(spec: ModelSpec) -> str:
    """Tokenizer family of a model, from its architecture family and vocabulary size.

    DeepSeek-R1-Distill-Qwen uses the Qwen2 tokenizer, -Distill-Llama the Llama 3 one
    (docs/references.md §1d, from the DeepSeek-R1 README: "we slightly change their configs and tokenizers" — the vocabularies stay).
    gpt-oss (o200k) and Qwen3 are counted with the cl100k-like Qwen2 class; MPT with the 32K class.
    """
    fam = spec.family
    if fam == "deepseek_v3":
        return "deepseek_v3"
    if fam in ("qwen2", "qwen3", "qwen3_moe", "gpt_oss"):
        return "qwen2"
    if fam == "gemma2":
        return "gemma"
    if fam in ("llama", "mistral", "mixtral", "mpt"):
        return "llama3" if spec.vocab_size >= _LARGE_VOCAB else "llama2"
    return "llama3" if spec.vocab_size >= _LARGE_VOCAB else "llama2"


def _check_choice(value: str, choices: tuple[str, ...], what: str) -> str:
    key = str(value).strip().lower()
    if key not in choices:
        raise ScenarioError(f"unknown {what} {value!r}; choose one of: {', '.join(choices)}")
    return key


def bytes_per_token(language: str, tokenizer: str, assumptions: Assumptions | None = None) -> float:
    """Bytes of raw UTF-8 text per token for ``language`` under ``tokenizer``.

    en/zh read ``bytes_per_token_<lang>_<tokenizer>``; code = en × ``code_bytes_per_token_vs_english``;
    mixed averages tokens per byte over the byte shares (``mixed_zh_fraction`` Chinese):
    1 / (f / zh + (1 - f) / en).
    """
    a = assumptions if assumptions is not None else Assumptions()
    lang = _check_choice(language, LANGUAGES, "language")
    tok = _check_choice(tokenizer, TOKENIZER_FAMILIES, "tokenizer family")
    en = float(a[f"bytes_per_token_en_{tok}"])
    if lang == "en":
        return en
    if lang == "code":
        return en * float(a["code_bytes_per_token_vs_english"])
    zh = float(a[f"bytes_per_token_zh_{tok}"])
    if lang == "zh":
        return zh
    f = float(a["mixed_zh_fraction"])
    return 1.0 / (f / zh + (1.0 - f) / en)


def fmt_text_bytes(n_bytes: float) -> str:
    """Decimal size of a text corpus with its unit (``1 KB``, ``1 GB``, ``1 TB``; 10^3 steps)."""
    for div, unit in ((TB, "TB"), (GB, "GB"), (MB, "MB"), (KB, "KB")):
        if n_bytes >= div:
            return f"{n_bytes / div:,.3g} {unit}"
    return f"{n_bytes:,.0f} bytes"


def check_epochs(epochs: float | int | str) -> float:
    """Validate an epoch count: a positive finite number (strings like '2' accepted)."""
    if isinstance(epochs, bool):
        raise ScenarioError(f"epochs {epochs!r} is not a number; accepted: {EPOCH_FORMS}")
    try:
        value = float(epochs)
    except (TypeError, ValueError):
        raise ScenarioError(f"cannot parse epochs {epochs!r}; accepted: {EPOCH_FORMS}") from None
    if not math.isfinite(value) or value <= 0:
        raise ScenarioError(f"epochs {epochs!r} must be positive; accepted: {EPOCH_FORMS}")
    return value


@dataclass(frozen=True)
class DatasetSize:
    """A dataset in tokens, with how its size was converted (all counts are plain numbers)."""

    text: str                  # what the user wrote
    unit: str                  # bytes | tokens | samples
    amount: float              # in that unit
    language: str
    tokenizer: str
    bytes_per_token: float
    raw_bytes: float           # raw text on disk (estimated back from tokens when given in tokens/samples)
    samples: float | None      # when given in samples
    text_tokens: float         # tokens in one pass over the data
    epochs: float
    packing: bool
    efficiency: float          # share of real tokens among processed tokens
    train_tokens: float        # tokens the GPUs process: text_tokens × epochs / efficiency
    explanation: str

    def to_dict(self) -> dict:
        return asdict(self)


def dataset_size(
    data: str | int | float | DataSize,
    spec: ModelSpec | None = None,
    *,
    language: str = "en",
    tokenizer: str | None = None,
    epochs: float | int | str = 1.0,
    packing: bool = True,
    assumptions: Assumptions | None = None,
) -> DatasetSize:
    """Convert a dataset size to training tokens.

    ``tokenizer`` defaults to the model's family (:func:`tokenizer_family`), else Llama 3.
    Raises ``ScenarioError`` (one line naming the accepted forms) for an unparseable or
    non-positive size or epoch count.
    """
    a = assumptions if assumptions is not None else Assumptions()
    ds = data if isinstance(data, DataSize) else parse_data_size(data)
    ep = check_epochs(epochs)
    lang = _check_choice(language, LANGUAGES, "language")
    tok = _check_choice(tokenizer, TOKENIZER_FAMILIES, "tokenizer family") if tokenizer else (
        tokenizer_family(spec) if spec is not None else "llama3")
    bpt = bytes_per_token(lang, tok, a)
    samples = None
    if ds.unit == "bytes":
        tokens = ds.amount / bpt
        raw = ds.amount
        how = (f"{fmt_text_bytes(raw)} of {LANGUAGE_NAMES[lang]} ÷ "
               f"{bpt:.2f} bytes/token for the {TOKENIZER_NAMES[tok]} = {fmt_count(tokens)} tokens")
    elif ds.unit == "samples":
        per = float(a["tokens_per_sample"])
        samples = ds.amount
        tokens = samples * per
        raw = tokens * bpt
        how = f"{fmt_count(samples)} samples × {per:,.0f} tokens/sample = {fmt_count(tokens)} tokens"
    else:
        tokens = ds.amount
        raw = tokens * bpt
        how = f"{fmt_count(tokens)} tokens as given"
    eff = float(a["packing_efficiency"] if packing else a["padding_efficiency"])
    if not 0 < eff <= 1:
        raise ScenarioError(f"{'packing' if packing else 'padding'}_efficiency must be in (0, 1], got {eff}")
    if tokens < 1:
        raise ScenarioError(f"dataset {ds.text!r} is {tokens:.3g} tokens, below one token; accepted: {DATA_FORMS}")
    train = tokens * ep / eff
    if not (math.isfinite(train) and math.isfinite(raw)):
        raise ScenarioError(f"dataset {ds.text!r} x {ep:g} epochs is too large to count; accepted: {DATA_FORMS}")
    scheme = "packed into full sequences" if packing else "padded per batch"
    explanation = (f"{how}; × {ep:g} epoch{'s' if ep != 1 else ''}; {scheme} with {eff:.0%} real tokens "
                   f"→ {fmt_count(train)} tokens processed.")
    return DatasetSize(text=ds.text, unit=ds.unit, amount=ds.amount, language=lang, tokenizer=tok,
                       bytes_per_token=bpt, raw_bytes=raw, samples=samples, text_tokens=tokens, epochs=ep,
                       packing=packing, efficiency=eff, train_tokens=train, explanation=explanation)


def bytes_per_token_table(assumptions: Assumptions | None = None) -> list[dict]:
    """Rows (tokenizer × language → bytes/token) for the report's assumptions section."""
    a = assumptions if assumptions is not None else Assumptions()
    return [{"tokenizer": tok, "tokenizer_name": TOKENIZER_NAMES[tok],
             **{lang: round(bytes_per_token(lang, tok, a), 3) for lang in LANGUAGES}} for tok in TOKENIZER_FAMILIES]


__all__ = ["DATA_FORMS", "DatasetSize", "LANGUAGES", "TOKENIZER_FAMILIES", "bytes_per_token",
           "bytes_per_token_table", "check_epochs", "dataset_size", "tokenizer_family"]
