"""The clinic: invented conditions and drugs, clinic notes, and general health text.

The clinic's *formulary* (which drug treats each condition, that drug's dose, frequency and
duration) is fixed by the world's seed, like the people's facts; a clinic note states one
condition's plan, so the formulary is what the domain corpus teaches. Condition and drug names
are invented, so no pretrained model already knows them.

General health texts use the clinic's words and register but never its facts: they are the
share of the general corpus that gives the base model the clinic's vocabulary (``stories`` and
``biographies`` both mix them in).

Every function here works on any world object with ``choice`` (a dict of ``Options``),
``conditions``, ``symptoms``, ``drug`` and ``regimen`` (``stories.World``). The programs follow
the engine's rules (``engine``): prefix-free choices, so every note has an exact probability.
"""

from __future__ import annotations

from .engine import Options, compile_template, harmonic_weights, validate_prefix_free

# ----------------------------------------------------------------------------- the vocabulary
CONDITIONS = ("marsh fever", "grey cough", "river rash", "stone colic", "winter ague",
              "dust lung", "salt itch", "moss pox", "ember throat", "hollow ache", "pale flux",
              "thorn palsy", "cinder fever", "frost blight", "amber jaundice", "reed wheeze",
              "mire chill", "ash gout", "briar rash", "copper cramp", "lantern eye",
              "willow sleep", "tide vertigo", "clay joint")
DRUGS = ("velamox", "doraquin", "tesoprine", "calvidol", "mirafen", "lutrazine", "bexomycin",
         "fenorab", "zolitrex", "quenadine", "halvocet", "orimazole", "pentrasil", "ravolin",
         "sudocaine", "tarvexin", "ulmisone", "vintrapam", "cosmarin", "dexapril", "ilfomide",
         "kelvaxin", "nebrazol", "gantrelle")
SYMPTOMS = ("cough", "fever", "headache", "sore throat", "rash", "itching", "nausea",
            "vomiting", "diarrhoea", "fatigue", "chills", "dizziness", "joint pain",
            "back pain", "chest pain", "wheezing", "runny nose", "red eyes", "muscle cramps",
            "weight loss", "night sweats", "swelling", "stiffness", "poor sleep", "yellow skin")
DOSES = ("5 mg", "10 mg", "20 mg", "50 mg", "100 mg", "250 mg", "500 mg", "1 g")
FREQUENCIES = ("once daily", "twice daily", "three times daily", "every 6 hours", "at night")
DURATIONS = ("3 days", "5 days", "7 days", "10 days", "14 days", "4 weeks")
P_SYMPTOM = 0.6  # each of the condition's symptoms is mentioned with this chance (at least one)

# {symptoms} ... {condition}: the condition is picked first but written after its symptoms, so
# that span is one choice ("case"); see compile_note. Symptom lists end with their full stop.
NOTES = ((0.5, "Patient: {age}-year-old {sex}. Complaint: {symptoms} Assessment: {condition}. "
               "Plan: {drug} {dose} {frequency} for {duration}. {followup}"),
         (0.3, "Clinic note. A {age}-year-old {sex} presented with {symptoms} Diagnosis: "
               "{condition}. Treatment: {drug} {dose}, {frequency}, for {duration}. {followup}"),
         (0.2, "Diagnosis: {condition}. {Sex}, aged {age}, with {symptoms} Start {drug} {dose} "
               "{frequency} for {duration}. {followup}"))
NOTE_FILLERS = {"age": tuple(str(a) for a in range(18, 90)),  # all two digits: prefix-free
                "sex": ("woman", "man"), "Sex": ("Female", "Male"),
                "followup": ("Review in 3 days.", "Review in one week.",
                             "Return if symptoms get worse.", "No follow-up needed.")}

# General health text, a share of the general corpus: the clinic's words and register, never its
# facts. No sentence pairs a condition with a symptom, a drug or a regimen, or a drug with a dose,
# frequency or duration, so the base model meets every token of the clinic notes (one shared
# vocabulary) but none of the formulary. Clinic notes open with "Patient:", "Clinic note." or
# "Diagnosis:"; BPE spells a word at the start of a text apart from the same word after a space,
# so health texts open those ways too.
HEALTH_OPENINGS = ("Health note: ", "From the clinic leaflet: ", "Patient: ", "Clinic note. ",
                   "Diagnosis: pending. ")
HEALTH_SENTENCES = (
    "A {age}-year-old {sex} asked the nurse about {symptom}.",
    "Complaint: {symptom}.", "Assessment: to be confirmed.",
    "Plan: rest, fluids and a review in one week.",
    "Some tablets are taken {frequency} for {duration}.",
    "The label says {dose} per dose.",
    "The pharmacy keeps {drug} on a high shelf.",
    "The nurse gave a talk about {condition}.",
    "Diagnosis: not yet made.", "Treatment: none for now.",
    "Clinic note. The patient presented with {symptom}.",
    "Seen today: a {sex}, aged {age}, with {symptom}.",
    "Start with water and rest.", "Advice: {followup}",
)
HEALTH_END = "Stay well."  # the closing sentence of every health text
HEALTH = ("health",)  # what a general document's first choice returns for a health opening
HEALTH_FILLERS = {"symptom": SYMPTOMS, "frequency": FREQUENCIES, "duration": DURATIONS,
                  "dose": DOSES, "drug": DRUGS, "condition": CONDITIONS,
                  "age": NOTE_FILLERS["age"], "sex": NOTE_FILLERS["sex"],
                  "followup": NOTE_FILLERS["followup"]}


# Cloze prompts for the domain facts use the first (most common) note form.
DOMAIN_PROMPTS = {"first_line_drug": "Assessment: {s}. Plan:", "dose": "Plan: {s}",
                  "frequency": "Plan: {s} {dose}", "duration": "Plan: {s} {dose} {frequency} for"}


# ----------------------------------------------------------------------------- the formulary
def draw_formulary(rng):
    """The clinic's facts, drawn from ``rng`` (after the people's): conditions (most common
    first), each one's symptoms (in SYMPTOMS order), its first-line drug, each drug's regimen."""
    conditions = rng.sample(CONDITIONS, len(CONDITIONS))
    symptoms = {c: tuple(sorted(rng.sample(SYMPTOMS, rng.randint(3, 5)), key=SYMPTOMS.index))
                for c in conditions}
    drug = dict(zip(conditions, rng.sample(DRUGS, len(DRUGS))))
    regimen = {d: {"dose": rng.choice(DOSES), "frequency": rng.choice(FREQUENCIES),
                   "duration": rng.choice(DURATIONS)} for d in drug.values()}
    return conditions, symptoms, drug, regimen


# ----------------------------------------------------------------------------- templates
def symptom_phrase(symptoms) -> str:
    """('cough', 'fever', 'rash') -> 'cough, fever and rash.' (the full stop ends the list)."""
    *head, last = symptoms
    return (", ".join(head) + " and " + last if head else last) + "."


def compile_note(template: str):
    """Like ``compile_template``, but fuses '{symptoms} <glue> {condition}' into one
    ('case', glue) slot: the condition is chosen with its symptoms, in one prefix-free choice."""
    opening, rest = compile_template(template)
    fused, i = [], 0
    while i < len(rest):
        if rest[i] == ("slot", "symptoms") and rest[i + 2:i + 3] == (("slot", "condition"),):
            fused.append(("case", rest[i + 1][1]))
            i += 3
        else:
            fused.append(rest[i])
            i += 1
    return opening, tuple(fused)


# ----------------------------------------------------------------------------- choice points
def build_note_choices(w) -> None:
    """The notes' choice points in ``w.choice`` (each checked prefix-free)."""
    c = w.choice
    for name, values in NOTE_FILLERS.items():
        c[name] = Options(values)
    notes = [compile_note(t) for _, t in NOTES]
    c["note"] = Options([o for o, _ in notes], [wt for wt, _ in NOTES], [r for _, r in notes])
    c["condition"] = Options(w.conditions, harmonic_weights(len(w.conditions)))
    for cond in w.conditions:
        subsets = _symptom_subsets(w.symptoms[cond])
        c["symptoms", cond] = Options([symptom_phrase(s) for s, _ in subsets],
                                      [p for _, p in subsets], [s for s, _ in subsets])
    for _, rest in notes:  # one joint (condition, symptoms) choice per glue text
        for kind, glue in rest:
            if kind == "case":
                c["case", glue] = _case_options(w, glue)


def _symptom_subsets(symptoms):
    """All non-empty subsets (in canonical order), each symptom in with chance P_SYMPTOM."""
    k, out = len(symptoms), []
    for mask in range(1, 2 ** k):
        subset = tuple(s for j, s in enumerate(symptoms) if mask >> j & 1)
        n = len(subset)
        out.append((subset, P_SYMPTOM ** n * (1 - P_SYMPTOM) ** (k - n)))
    total = sum(p for _, p in out)  # = 1 - P(no symptom): we condition on at least one
    return [(s, p / total) for s, p in out]


def _case_options(w, glue: str) -> Options:
    texts, weights, values = [], [], []
    for cond, weight in zip(w.conditions, harmonic_weights(len(w.conditions))):
        opts = w.choice["symptoms", cond]
        for phrase, p, subset in zip(opts.texts, opts.weights, opts.values):
            texts.append(phrase + glue + cond)
            weights.append(weight * p)
            values.append((cond, subset))
    return Options(texts, weights, values)


def build_health_choices(c: dict) -> None:
    """The health texts' choice points, under ("health", slot) so they never clash with the
    notes' own (the notes' "condition" is Zipf-weighted; a health text's is uniform)."""
    for name, values in HEALTH_FILLERS.items():
        c["health", name] = Options(values)
    c["health"] = [compile_template(t) for t in HEALTH_SENTENCES]
    validate_prefix_free([o for o, _ in c["health"]] + [HEALTH_END])


# ----------------------------------------------------------------------------- the programs
def health_body(c: dict, io) -> None:
    """Health sentences after the opening: at least two, each new, then "Stay well." with
    chance 0.4 after each one (always once all are used)."""
    used: set = set()
    while True:
        free = [i for i in range(len(HEALTH_SENTENCES)) if i not in used]
        p_stop = 0.0 if len(used) < 2 else (0.4 if free else 1.0)
        rows = [(c["health"][i][0], (1 - p_stop) / len(free), (i, c["health"][i][1]))
                for i in free] if p_stop < 1 else []
        if p_stop:
            rows.append((HEALTH_END, p_stop, (None, ())))
        texts, weights, values = zip(*rows)
        i, rest = io.choose("health", Options(texts, weights, values, validate=False))
        if i is None:
            return
        used.add(i)
        for kind, value in rest:
            if kind == "text":
                io.emit(value)
            else:
                io.choose(value, c["health", value])
        io.emit(" ")


def clinic_note(w, io) -> None:
    """One clinic note: form, patient, symptoms, condition, the condition's plan, follow-up."""
    condition = None
    for kind, value in io.choose("note", w.choice["note"]):
        if kind == "text":
            io.emit(value)
        elif kind == "case":
            condition, _ = io.choose("case", w.choice["case", value])
        elif value == "condition":
            condition = io.choose("condition", w.choice["condition"])
        elif value == "symptoms":
            io.choose("symptoms", w.choice["symptoms", condition])
        elif value == "drug":
            io.emit(w.drug[condition])
        elif value in ("dose", "frequency", "duration"):
            io.emit(w.regimen[w.drug[condition]][value])
        else:
            io.choose(value, w.choice[value])
