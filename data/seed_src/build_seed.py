"""Builds data/seed/{personas,queries}.jsonl from the hand-written parts below (run once, committed).

Personas: a name, a role and a working style per line. Queries: task phrasings applied to
hand-picked topics, plus programming tasks. Eval rows use topics and roles that train never sees.

    python3 data/seed_src/build_seed.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "seed"

NAMES = ["Marta", "Tomas", "Aiko", "Ravi", "Lena", "Omar", "Sofia", "Jonas", "Priya", "Mateo", "Hana", "Felix",
         "Amara", "Lucas", "Ines", "Kenji", "Nadia", "Elias", "Zara", "Pablo", "Mei", "Arjun", "Clara", "Tariq",
         "Freya", "Diego", "Yara", "Henrik", "Leila", "Samuel", "Noor", "Viktor", "Alba", "Kofi", "Rosa", "Ivan"]

# (domain, role description) — hand-written.
ROLES = [
    ("cycling", "a patient bicycle mechanic who runs a small repair shop"),
    ("cooking", "a home cook who teaches weeknight recipes to busy families"),
    ("baking", "a baker who loves explaining bread and pastry to beginners"),
    ("travel", "a travel guide who plans budget trips across Europe"),
    ("finance", "a personal finance coach who helps people build their first budget"),
    ("health", "a nurse who shares general wellness information, never diagnoses"),
    ("law", "a paralegal who explains everyday legal ideas in plain words"),
    ("programming", "a senior Python developer who mentors junior engineers"),
    ("gardening", "a community gardener who grows vegetables on a small balcony"),
    ("education", "a primary school teacher who makes lessons playful"),
    ("fitness", "a fitness coach who designs routines for complete beginners"),
    ("music", "a piano teacher who works with adult learners"),
    ("history", "a history lecturer who tells the past through stories"),
    ("support", "a support agent for a note-taking app called Quillpad"),
    ("hr", "an HR advisor who helps small companies write fair policies"),
    ("real-estate", "a rental agent who helps students find their first flat"),
    ("pets", "a dog trainer who focuses on positive reinforcement"),
    ("parenting", "a parenting coach who helps new parents with sleep routines"),
    ("science", "a science communicator who explains physics with kitchen experiments"),
    ("sports", "a youth football coach who values teamwork over winning"),
    ("languages", "a Spanish tutor who teaches through everyday conversation"),
    ("retail", "a bookshop owner who recommends novels for every mood"),
    ("logistics", "a warehouse planner who optimises delivery routes"),
    ("games", "a board game designer who tests rules with friends"),
    ("museum", "a museum guide at a small maritime museum"),
    ("library", "a librarian who helps people find reliable sources"),
    ("astronomy", "an amateur astronomer who runs a stargazing club"),
    ("photography", "a street photographer who teaches phone photography"),
    ("writing", "a writing coach who helps people finish their first short story"),
    ("career", "a career counsellor who reviews CVs for graduates"),
    ("environment", "a recycling officer for a mid-sized town council"),
    ("coffee", "a barista who trains new staff at a busy cafe"),
    ("carpentry", "a carpenter who builds simple furniture from reclaimed wood"),
    ("nutrition", "a dietitian who shares balanced meal ideas, not medical advice"),
    ("chess", "a chess club organiser who coaches new players"),
    ("sailing", "a sailing instructor on a calm lake"),
    ("insurance", "an insurance clerk who explains policies without jargon"),
    ("events", "a wedding planner who keeps celebrations on budget"),
    ("volunteering", "a volunteer coordinator at a food bank"),
    ("customer-service", "a hotel receptionist who handles guest requests"),
    ("mental-wellbeing", "a mindfulness teacher who leads short breathing sessions"),
    ("data", "a data analyst who explains charts to managers"),
]
EVAL_ROLES = [
    ("beekeeping", "a beekeeper who sells honey at the weekend market"),
    ("architecture", "an architect who designs energy-efficient small houses"),
    ("pottery", "a potter who runs evening classes for adults"),
    ("cybersecurity", "a security analyst who helps families protect their accounts"),
    ("birdwatching", "a birdwatching guide at a wetland reserve"),
    ("translation", "a translator who works between German and English"),
    ("cycling-tours", "a tour leader for long-distance cycling holidays"),
    ("tea", "a tea merchant who explains brewing for each leaf"),
]
STYLES = [
    "You explain things step by step.", "You keep a warm and encouraging tone.",
    "You are direct and practical.", "You like to give one concrete example.",
    "You speak simply, for people new to the subject.", "You are calm and reassuring.",
    "You enjoy a little humour but stay helpful.", "You always think about safety first.",
]

TOPICS = [
    "composting at home", "the water cycle", "saving for retirement", "sourdough bread", "learning to swim",
    "solar panels", "time management", "the history of the printing press", "houseplants in low light",
    "public speaking", "recycling plastics", "how vaccines train the immune system", "budget travel by train",
    "making cold brew coffee", "training a puppy to sit", "writing a cover letter", "the phases of the moon",
    "keeping a reading habit", "basic knot tying", "starting a vegetable garden", "how credit scores work",
    "reducing food waste", "stretching after a run", "learning a new language", "the rules of chess",
    "preparing for a job interview", "the life cycle of a butterfly", "home energy saving",
    "choosing a first bicycle", "meal prepping for a week", "photosynthesis", "organising a small wedding",
    "volcanoes", "the basics of first aid", "camping in the rain", "renting a first apartment",
    "writing a short story", "recording a podcast", "the invention of the telephone", "caring for a cat",
    "planning a birthday party", "rainwater harvesting", "sleep hygiene", "how tides work",
    "building a bookshelf", "teaching kids to save money", "the Roman aqueducts", "brewing green tea",
    "taking better phone photos", "learning to juggle", "how airplanes stay in the air",
    "bird feeders in winter", "a capsule wardrobe", "running a book club", "the causes of rainbows",
    "fixing a flat bicycle tyre", "starting to meditate", "the history of jazz", "packing light for a trip",
    "how recycling centres sort waste", "growing herbs on a windowsill", "choosing a laptop for school",
    "the basics of investing in index funds", "how bees make honey", "keeping chickens in a back garden",
]
EVAL_TOPICS = [
    "how glaciers form", "restoring an old wooden chair", "the first moon landing", "mushroom foraging safety",
    "writing a eulogy", "how noise-cancelling headphones work", "learning to knit", "the Silk Road",
    "hosting a dinner for eight", "how lighthouses work",
]
TASKS = [
    ("explanation", "Explain {t} in simple terms."),
    ("list", "List a few key points about {t}."),
    ("advice", "What advice would you give to someone starting with {t}?"),
    ("summary", "Summarize the main ideas behind {t} in a few sentences."),
    ("planning", "Make a simple one-week plan for getting into {t}."),
    ("email", "Write a short email inviting a friend to a workshop on {t}."),
    ("story", "Write a very short story in which {t} plays a part."),
    ("writing", "Write a short newsletter paragraph about {t}."),
    ("comparison", "What are the pros and cons of {t}?"),
]
CODE_TASKS = [
    "reverses a string", "checks whether a word is a palindrome", "counts the vowels in a sentence",
    "returns the largest number in a list", "removes duplicates from a list while keeping order",
    "converts Celsius to Fahrenheit", "computes the factorial of a number", "merges two sorted lists",
    "counts word frequencies in a text", "checks whether a year is a leap year", "flattens a nested list",
    "returns the n-th Fibonacci number", "validates a simple email address", "capitalises every word",
    "finds the second smallest number in a list", "sums the digits of an integer", "chunks a list into pairs",
    "reads a CSV file and prints its header", "checks whether two words are anagrams", "rounds prices to cents",
    "returns the average of a list, or None when it is empty", "finds the longest word in a sentence",
]
EVAL_CODE_TASKS = ["converts a number to Roman numerals", "rotates a list by k positions",
                   "checks whether brackets in a string are balanced"]


def pool(split: str, index: int) -> str:
    """Every 7th training role, topic and code task (whole, with all its templates) is the validation pool:
    tuning never sees a test ("eval") item, and validation shares no role or topic with training."""
    return "validation" if split == "train" and index % 7 == 3 else split


def personas() -> list[dict]:
    rng = random.Random(11)
    rows = []
    for split, roles, per_role in (("train", ROLES, 5), ("eval", EVAL_ROLES, 5)):
        for index, (domain, role) in enumerate(roles):
            for name in rng.sample(NAMES, per_role):
                style = rng.choice(STYLES)
                rows.append({"domain": domain, "system": f"You are {name}, {role}. {style}",
                             "split": pool(split, index)})
    return [{"id": f"p{i + 1:04d}", **row} for i, row in enumerate(rows)]


def queries() -> list[dict]:
    rows = []
    for split, topics, code in (("train", TOPICS, CODE_TASKS), ("eval", EVAL_TOPICS, EVAL_CODE_TASKS)):
        for index, topic in enumerate(topics):
            for task, template in TASKS:
                rows.append({"task": task, "text": template.format(t=topic), "split": pool(split, index)})
        for index, job in enumerate(code):
            rows.append({"task": "code", "text": f"Write a Python function that {job}.", "split": pool(split, index)})
    return [{"id": f"q{i + 1:04d}", **row} for i, row in enumerate(rows)]


def write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


if __name__ == "__main__":
    p, q = personas(), queries()
    assert len({r["system"] for r in p}) == len(p) and len({r["text"] for r in q}) == len(q)
    write(OUT / "personas.jsonl", p)
    write(OUT / "queries.jsonl", q)
    for name, rows in (("personas", p), ("queries", q)):
        print(name, len(rows), {s: sum(r["split"] == s for r in rows) for s in ("train", "validation", "eval")})
