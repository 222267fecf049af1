"""Witness responses: a text that passes every constraint of a set, built from the set's ``Needs``.

A witness is the proof that a set is satisfiable: ``build_witness`` assembles a response from the
merged needs (opening, title, section markers, filler sentences, bullets, numbered lines,
postscript, ending; JSON, quotes or two responses around it), repairs deficits (too few words,
letters, all-caps words, ...) and returns it only if the real checkers pass it. The audit
(``reverso constraints audit``) and the property tests call it on sampled sets and their reverses.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import product

from reverso.constraints.base import CheckContext, Constraint, ResponseView, get_type
from reverso.constraints.conflicts import INF, Needs, count, needs

# Filler vocabulary: plain lowercase words, no first person, none of the keyword pools' words.
_VOCAB = ("sun", "road", "calm", "wind", "tree", "bold", "warm", "blue", "hill", "lamp", "cold", "dark", "fog",
          "oak", "sky", "cup", "dry", "far", "big", "low", "old", "up", "go", "to", "in", "on", "at", "by", "of",
          "so", "all", "but", "not", "fun", "mud", "hut", "gum", "bus", "dusk", "pulp", "lucky", "sunny", "windy",
          "quick", "clouds", "orchard", "mountains", "thunderstorms", "wonderful", "brightly", "carefully",
          "understanding", "comfortable", "photograph", "wildflowers")
_SHORT_BOOST = {"a": "aha", "e": "eve", "i": "mini", "n": "nun", "o": "zoo", "r": "err", "s": "sis", "t": "tot"}
_BOOST = {"a": "banana", "e": "tennessee", "i": "mississippi", "n": "nonnative", "o": "cocoon", "r": "error",
          "s": "assess", "t": "tattoo", "l": "lull", "u": "muumuu"}
_FIXERS = {"capital_words": "UK", "uppercase": "Sun", "emojis": "🙂", "exclamations": "!y", "commas": ",",
           "digits": "7", "urls": "https://example.org", "first_person": "my", "placeholders": "[name]",
           "highlights": "*note*", "questions": "?y"}
# '?' and '!' directly followed by a letter ("?y") count as marks without ending a sentence.


@dataclass
class Plan:
    lo: dict[str, int] = field(default_factory=dict)
    hi: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    tags: dict[str, object] = field(default_factory=dict)

    def allowed(self, dim: str, value: int) -> bool:
        if not self.lo.get(dim, 0) <= value <= self.hi.get(dim, INF):
            return False
        return not any(a <= value <= b for a, b in self.excluded.get(dim, []))


def plan_of(forms: Sequence[Needs]) -> Plan:
    plan = Plan()
    for form in forms:
        for dim, lo, hi in form.bounds:
            plan.lo[dim] = max(plan.lo.get(dim, 0), lo)
            plan.hi[dim] = min(plan.hi.get(dim, INF), hi)
        for dim, lo, hi in form.excluded:
            plan.excluded.setdefault(dim, []).append((lo, hi))
        plan.tags.update(form.tags)
    return plan


def _vocab(plan: Plan, short: bool) -> list[str]:
    banned_letters = {d.split(":", 1)[1] for d, h in plan.hi.items() if d.startswith("letter:") and h < INF}
    banned_parts = [d.split(":", 1)[1].lower() for d, h in plan.hi.items()
                    if d.startswith(("word:", "substr:")) and h < INF]
    words = [w for w in _VOCAB if not banned_letters & set(w) and not any(p in w or w in p for p in banned_parts)]
    words.sort(key=len)
    return words[: max(4, len(words) // 3)] if short else words


@dataclass
class Variant:
    per_sentence: int
    short: bool
    spread: bool
    inline_dividers: bool


def _chunks(items: list[str], parts: int) -> list[list[str]]:
    """``items`` split into ``min(parts, len(items))`` consecutive, nearly equal, non-empty chunks."""
    parts = max(1, min(parts, len(items)))
    size, extra = divmod(len(items), parts)
    chunks, start = [], 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        chunks.append(items[start:end])
        start = end
    return chunks


def _sentences(body: list[str], per_sentence: int) -> list[str]:
    """Group body tokens into sentences of ``per_sentence`` words; a '.' token forces a break."""
    sentences, current = [], []
    for token in [*body, "."]:
        if token != ".":
            current.append(token)
        if current and (token == "." or len(current) >= per_sentence):
            text = " ".join(current).replace(" ,", ",")
            sentences.append(text if text.endswith(("?", "!", ".")) else text + ".")
            current = []
    return sentences


def _join(groups: list[list[str]], merge: bool) -> list[str]:
    """One string per group; ``merge`` drops inner full stops so groups do not add sentences."""
    texts = [" ".join(g) for g in groups]
    if merge:
        texts = [t.rstrip(".") for t in texts[:-1]] + texts[-1:]
    return texts


def _render(plan: Plan, variant: Variant, body: list[str], vocab: list[str]) -> str:
    tags = plan.tags
    few = variant.per_sentence >= 40  # the variant that keeps the sentence count down
    sentences = _sentences(body, variant.per_sentence) or [f"{vocab[0]}."]
    first, _, rest = sentences[0].partition(" ")
    if "two_responses" in tags:  # the separator goes after the first word: two different parts
        first, rest = first.rstrip("."), f"****** {rest or vocab[-1] + '.'}"
    sentences[0] = f"{first}\x00 {rest}" if rest else f"\x00{first}"  # where padding spaces go
    head = ([str(tags["start"])] if "start" in tags else []) + ([f"<<{vocab[0]}>>"] if "title" in tags else [])
    section_key = next((d for d in plan.lo if d.startswith("sections:")), None)
    n_sections = plan.lo.get(section_key, 0) if section_key else 0
    if n_sections:
        groups = _chunks(sentences, n_sections)
        groups += [[f"{vocab[0]}."] for _ in range(n_sections - len(groups))]
        marker = section_key.split(":", 1)[1]  # type: ignore[union-attr]
        sentences = [f"{marker} {i} {g}" for i, g in enumerate(_join(groups, few), start=1)]
    stars = int(tags.get("star_paragraphs", 0) or 0)
    if stars > 1:
        groups = _chunks(sentences, stars)
        groups += [[f"{vocab[-1]}."] for _ in range(stars - len(groups))]
        divider = " *** " if variant.inline_dividers else "\n***\n"
        sentences = [divider.join(_join(groups, few))]
    elif few and len(sentences) > 1:
        sentences = _join([[s] for s in sentences], True)
    if few and ("end" in tags or "end_question" in tags or "postscript" in tags):
        sentences[-1] = sentences[-1].rstrip(".")  # the ending closes the one sentence
    # "-" bullets: a "*" bullet would pair with a *highlight* on the same line.
    items = [f"- {vocab[0]}" for _ in range(int(tags.get("items_bullets", 0)))]
    items += [f"{i}. {vocab[0]}" for i in range(1, int(tags.get("items_numbered", 0)) + 1)]
    tail: list[str] = []
    if "postscript" in tags:
        marker = str(tags["postscript"]).lower()  # "p.s.word": no sentence break after the marker
        tail.append(f"{marker}{'' if marker.endswith('.') else ' '}{vocab[0]}{'' if few else '.'}")
    if "end" in tags:
        tail.append(str(tags["end"]))
    elif "end_question" in tags:
        tail.append(f"{vocab[0]}?")
    inline = "json" in tags  # JSON keeps its text on one line; the object's parts are spread instead
    text = _layout(plan, variant, [*head, *sentences], items, tail, vocab, inline)
    if "json" in tags:
        text = _json_text(plan, text, vocab)
    if "wrap" in tags:
        text = f'"{text}"'
    # Spaces inside the first sentence: characters without words, lines or sentences.
    missing_chars = max(0, plan.lo.get("chars", 0) - len(text) + 1)
    return text.replace("\x00", " " * missing_chars)


def _layout(plan: Plan, variant: Variant, block: list[str], items: list[str], tail: list[str],
            vocab: list[str], inline: bool) -> str:
    """Lines: the free text (opening, title, sentences), then one line per list item, the tail last."""
    lines_lo = 0 if inline else plan.lo.get("lines", 0)
    lines_hi = INF if inline else plan.hi.get("lines", INF)
    paras_lo = 0 if inline else plan.lo.get("blank_paragraphs", 0)
    wanted = max(lines_lo, paras_lo, 1)
    free = max(1, wanted - len(items))
    if variant.spread:
        free = max(free, min(len(block), lines_hi - len(items)))
    lines = [" ".join(chunk) for chunk in _chunks(block, free)]
    while len(lines) < free:
        lines.append(vocab[-1])  # no full stop: not a new sentence
    if items and len(lines) + len(items) > lines_hi and "start" not in plan.tags and "wrap" not in plan.tags:
        items[0] = f"{items[0]} {lines.pop(0)}"  # the free text rides on the first item's line
    lines += items
    if tail:
        if lines and (len(lines) >= lines_hi or not variant.spread):
            lines[-1] = " ".join([lines[-1], *tail])
        else:
            lines += tail
    joiners = ["\n\n" if index < paras_lo - 1 else "\n" for index in range(len(lines) - 1)]
    return lines[0] + "".join(j + line for j, line in zip(joiners, lines[1:]))


def _json_text(plan: Plan, text: str, vocab: list[str]) -> str:
    """The text as the first value of a JSON object; its parts go on separate lines when lines are needed."""
    keys = list(plan.tags["json"]) or [vocab[0]]  # type: ignore[call-overload]
    wanted = max(plan.lo.get("lines", 0), plan.lo.get("blank_paragraphs", 0))
    # More lines than "{ key : value }" has parts: nest the first value (no commas needed).
    depth = max(0, -(-(wanted - 3 * len(keys) - 2) // 4))
    parts = ["{\x00"]
    for index, key in enumerate(keys):
        parts += [("," if index else "") + json.dumps(key), ":"]
        if index == 0:
            for _ in range(depth):
                parts += ["{", json.dumps(vocab[0]), ":"]
            parts.append(json.dumps(text.replace("\x00", ""), ensure_ascii=False))
            parts += ["}"] * depth
        else:
            parts.append(json.dumps(vocab[0]))
    parts.append("}")
    paras_lo = plan.lo.get("blank_paragraphs", 0)
    lines = [" ".join(chunk) for chunk in _chunks(parts, max(1, wanted))]
    joiners = ["\n\n" if index < paras_lo - 1 else "\n" for index in range(len(lines) - 1)]
    return lines[0] + "".join(j + line for j, line in zip(joiners, lines[1:]))


def _deficits(plan: Plan, view: ResponseView, short: bool) -> list[str]:
    """Tokens to add so the body meets the lower bounds it still misses."""
    extra: list[str] = []
    for dim, lo in plan.lo.items():
        missing = lo - count(dim, view)
        if missing <= 0:
            continue
        kind, _, arg = dim.partition(":")
        if kind == "letter":
            word = (_SHORT_BOOST if short else _BOOST).get(arg, arg * 3)
            extra += [word] * max(1, -(-missing // max(1, word.count(arg))))
        elif kind in ("word", "substr"):
            extra += [arg] * missing
        elif kind in _FIXERS:
            extra += [_FIXERS[kind]] * missing
    return extra


def _variants(plan: Plan) -> list[Variant]:
    short_first = plan.hi.get("chars", INF) < INF
    per_sentence = [6, 3, 12, 40] if plan.hi.get("sentences", INF) >= INF else [40, 12, 6, 3]
    return [Variant(p, s, sp, inline) for s, sp, p, inline in
            product([short_first, not short_first], [False, True], per_sentence, [False, True])]


def build_witness(constraints: Sequence[Constraint], context: CheckContext) -> str | None:
    """A response passing every verifiable constraint of ``constraints``; None if none was found."""
    from reverso.constraints import check_all

    verifiable = [c for c in constraints if get_type(c.id).verifiable]
    plan = witness_plan(verifiable)
    for variant in _variants(plan):
        text = attempt(plan, variant)
        if text is not None and all(v.passed for v in check_all(verifiable, text, context)):
            return text
    return None


def witness_plan(constraints: Sequence[Constraint]) -> Plan:
    """The merged ``Needs`` of the verifiable constraints, with the item kinds resolved."""
    forms = [needs(c) for c in constraints if get_type(c.id).verifiable]
    plan = plan_of(forms)
    for form in forms:  # which item kind an exact-count tag belongs to
        if "items" in form.tags:
            kind = "items_numbered" if any(d == "numbered" for d, _, _ in form.bounds) else "items_bullets"
            plan.tags[kind] = form.tags["items"]
    plan.tags.pop("items", None)
    return plan


def attempt(plan: Plan, variant: Variant) -> str | None:
    """Render one layout variant and repair its lower-bound deficits (a few rounds)."""
    vocab = _vocab(plan, variant.short)
    if len(vocab) < 2:
        return None
    body = vocab[:1]
    text = ""
    for _ in range(8):
        text = _render(plan, variant, body, vocab)
        view = ResponseView(text)
        extra = _deficits(plan, view, variant.short)
        words, sentences = count("words", view), len(view.sentences)
        words += sum(count("words", ResponseView(token)) for token in extra)  # the fixers' own words
        above = [b + 1 - words for a, b in plan.excluded.get("words", []) if a <= words <= b]
        if words < plan.lo.get("words", 0) or above:
            extra += [vocab[len(body) % len(vocab)]] * max(1, plan.lo.get("words", 0) - words, *above)
        if sentences < plan.lo.get("sentences", 0):
            extra += ["."] * (plan.lo["sentences"] - sentences)
        if not extra:
            break
        body = _place(body, extra, vocab[0])
    return text


def _place(body: list[str], extra: list[str], filler: str) -> list[str]:
    """Add tokens to the body; '.' starts a new short sentence."""
    result = list(body)
    for token in extra:
        if token == ".":
            result += [filler, "."]
        elif token == ",":
            result.insert(max(1, len(result) // 2), ",")
        else:
            result.append(token)
    return result
