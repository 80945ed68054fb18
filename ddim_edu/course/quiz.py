"""Short conceptual questions with self-checks, beside the coding exercises.

Each notebook asks two or three of them. A question is multiple choice (answer with a letter)
or numeric (answer with a number; it counts as right within the question's tolerance):

    de.course.quiz.ask("03.deterministic")          # prints the question and its choices
    answer = None                                    # your answer, e.g. "a" or 0.5
    de.course.quiz.check_answer("03.deterministic", answer)   # ✓ / ✗ with a short explanation

A blank answer (``None`` or ``""``) prints "not answered yet" and returns ``None``, so a notebook
runs top to bottom before any question is answered. A wrong answer prints a hint, never the
answer; a right one prints why it is right. Nothing here is graded: these are self-checks. Each
stored answer is recomputed with the package by ``tests/course/test_quiz.py`` where it can be
computed (ᾱ values, NFE counts, which η is deterministic). The worked answers to the notebooks'
open questions are in ``docs/answer_key.md`` (for teachers), not here.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

__all__ = ["QUESTIONS", "Question", "ask", "check_answer", "questions"]


@dataclass(frozen=True)
class Question:
    """One question: ``answer`` is a choice letter when ``choices`` is given, else a number
    (right when within ``tol`` of it); ``hint`` is shown after a wrong answer, ``explanation``
    after a right one."""
    qid: str
    prompt: str
    answer: object
    explanation: str
    hint: str
    choices: dict = field(default_factory=dict)
    tol: float = 0.0

    @property
    def notebook(self) -> str:
        return self.qid.split(".", 1)[0]

    @property
    def kind(self) -> str:
        return "choice" if self.choices else "number"


QUESTIONS: dict[str, Question] = {}


def _add(qid, prompt, answer, explanation, hint, choices=None, tol=0.0):
    if qid in QUESTIONS:
        raise ValueError(f"question id {qid!r} is registered twice")
    QUESTIONS[qid] = Question(qid, prompt, answer, explanation, hint, dict(choices or {}), tol)


# ----------------------------------------------------------------------------- 00 · set-up and tour
_add("00.calls", "DDIM with S = 50 steps, and DDPM's ancestral sampler with all T = 1000 steps: how many "
     "times fewer network calls per image does DDIM make?", 20,
     "Each DDIM step is one network call, so S = 50 calls against 1000: 20 times fewer.",
     "Count network calls: one per step for each sampler.", tol=0.01)
_add("00.same_xT", "You run de.ddim_sample(model, x_T, sched, steps=50, eta=0.0) twice on the same x_T. "
     "What comes out?", "a",
     "With η = 0 eq. (12) adds no noise: the sample is a fixed function of x_T (up to float rounding).",
     "Does a step with η = 0 draw any random numbers?",
     choices={"a": "the same images both times", "b": "different digits each time",
              "c": "the same digits, with different noise on top"})

# ----------------------------------------------------------------------------- 01 · forward process
_add("01.paper_alpha", "The DDIM paper writes α_t. Which symbol of this course is it?", "b",
     "The paper's α_t is DDPM's ᾱ_t = ∏(1 − β_s): x_t = √α_t x₀ + √(1 − α_t) ε in the paper's notation.",
     "Look at how the paper writes q(x_t | x₀) and compare with the closed form of section 3.",
     choices={"a": "α_t = 1 − β_t", "b": "ᾱ_t = ∏_{s≤t} (1 − β_s)", "c": "β_t", "d": "√ᾱ_t"})
_add("01.alpha_bar_500", "For the linear schedule (β from 10⁻⁴ to 0.02, T = 1000), what is ᾱ_t at t = 500? "
     "(two decimals)", 0.0778,
     "ᾱ_500 ≈ 0.078: half-way through the chain only about 8% of the signal's variance is left.",
     "sched.alpha_bar[500], or exp of the sum of log(1 − β_s) for s ≤ 500.", tol=0.005)
_add("01.equal_weight", "x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε. At what value of ᾱ_t do signal and noise have equal "
     "variance (SNR = 1)?", 0.5,
     "ᾱ = 1 − ᾱ at ᾱ = 1/2: the signal-to-noise ratio ᾱ/(1 − ᾱ) is 1 there.",
     "Set the two coefficients' squares equal.", tol=1e-3)

# ----------------------------------------------------------------------------- 03 · DDPM vs DDIM
_add("03.deterministic", "Which sampler of the family is deterministic (the same x_T always gives the same "
     "x₀)?", "a",
     "σ(η) of eq. (16) is proportional to η, so η = 0 removes the random term σz of eq. (12).",
     "Which term of eq. (12) is random, and how does its size depend on η?",
     choices={"a": "η = 0", "b": "η = 0.5", "c": "η = 1", "d": "the σ̂ row"})
_add("03.ddpm_eta", "On consecutive steps (t → t − 1), which value of η makes DDIM's step DDPM's "
     "ancestral step, with σ² = β̃_t?", 1.0,
     "σ(1)² = (1 − ᾱ_{t−1})/(1 − ᾱ_t) · (1 − ᾱ_t/ᾱ_{t−1}) = β̃_t: section 3 asserts it for every t.",
     "Put ᾱ' = ᾱ_{t−1} into eq. (16) and compare with β̃_t of notebook 01.", tol=1e-9)
_add("03.first_step", "With skip=\"uniform\" and S = 50, from which timestep does the sampler start "
     "(τ_{S−1})?", 980,
     "τ_i = i·⌊T/S⌋ = 20 i for i = 0 … 49, so the last is 980, not 999.",
     "de.make_timesteps(1000, 50)", tol=0.0)

# ----------------------------------------------------------------------------- 04 · the ODE view
_add("04.heun_nfe", "Heun's method with S = 10 steps (the package's \"heun\"): how many network "
     "evaluations?", 19,
     "Two per step except the last, which is an Euler step: 2S − 1 = 19.",
     "de.SAMPLERS[\"heun\"].nfe(10); the table in section 5 gives the formula.", tol=0.0)
_add("04.order", "DDIM is Euler's method for the ODE. Far from the floor near t = 0, doubling S changes "
     "its error against the exact ODE solution by about which factor?", "b",
     "Euler is first order: the error falls like 1/S, so twice the steps give about half the error.",
     "What is the order of Euler's method, and what does order p mean for the error?",
     choices={"a": "×1 (no change)", "b": "×1/2", "c": "×1/4", "d": "×2"})
_add("04.sigma_bar_T", "The noise level of the ODE view is σ̄ = √(1 − ᾱ)/√ᾱ. What is σ̄ at t = 999 on the "
     "linear schedule? (nearest integer)", 157.4,
     "ᾱ_999 ≈ 4.0·10⁻⁵, so σ̄ ≈ 1/√ᾱ ≈ 157: x̄ = x/√ᾱ is data plus noise of standard deviation 157.",
     "sched.sigma()[999], or 1/√ᾱ_999 since 1 − ᾱ_999 ≈ 1.", tol=0.5)

# ----------------------------------------------------------------------------- 05 · interpolation
_add("05.code_norm", "A code x_T for one 28×28 digit is a draw from N(0, I_784). About how long is it "
     "(its Euclidean norm)?", 28.0,
     "‖z‖² is a sum of 784 terms of mean 1, so ‖z‖ ≈ √784 = 28, with a spread of only about 0.7.",
     "What is E‖z‖² for z ~ N(0, I_d)?", tol=1.0)
_add("05.why_eta0", "Why does the course decode interpolation paths with η = 0 and not η = 1?", "b",
     "With η = 1 every step adds fresh noise, so the image depends on that noise as much as on x_T: "
     "nearby codes do not give nearby images, and the path is not smooth (section 4 measures it).",
     "What else, besides x_T, does an η = 1 sample depend on?",
     choices={"a": "η = 1 is slower per step",
              "b": "with η = 1 the image also depends on fresh noise, so a smooth path of codes is not a smooth path of images",
              "c": "slerp is only defined for η = 0",
              "d": "η = 1 changes the norm of x_T"})

# ----------------------------------------------------------------------------- 06 · reconstruction
_add("06.roundtrip_nfe", "Encoding a digit with S = 50 inversion steps and decoding it with S = 50 DDIM "
     "steps: how many network calls per digit in all?", 100,
     "One call per step each way: S to encode, S to decode, 2S = 100 (Table 2's cost).",
     "Count the calls of de.ddim_invert and of de.ddim_sample separately.", tol=0.0)
_add("06.inversion_noise", "DDIM inversion runs eq. (12) towards more noise. With which step noise?", "a",
     "Inversion is the deterministic (η = 0) step run backwards; any σ > 0 would make the code random.",
     "For x_T to be a code of x₀, the same x₀ must always give the same x_T.",
     choices={"a": "σ = 0 (η = 0)", "b": "σ(1), DDPM's amount", "c": "σ̂"})
_add("06.euler_slope", "Euler's method is first order. Once S is large enough for the error to be in its "
     "asymptotic regime, which log-log slope of the round-trip error against S do you expect?", -1.0,
     "Error ∝ 1/S, i.e. slope −1 on log-log axes (exercise 3 shows why a fit that includes very coarse S "
     "comes out shallower).",
     "Error ∝ S^(−p) for an order-p method: what is the slope of log error against log S?", tol=0.05)

# ----------------------------------------------------------------------------- 08 · the likelihood view
_add("08.simple_weight", "L_simple replaces the bound's weight w_t on ‖ε − ε_θ(x_t, t)‖² by a constant. "
     "Which constant?", 1.0,
     "L_simple (DDPM eq. 14) weights every t the same: w_t = 1 (up to the overall scale).",
     "Compare DDPM eq. 12 (weighted) with eq. 14 (simple).", tol=1e-9)
_add("08.ddim_bound", "Why does DDIM with η = 0 have no variational bound on log p(x₀)?", "a",
     "With σ = 0 every model step is a point mass, while q(x_{t−1} | x_t, x₀) keeps variance β̃_t: "
     "each KL term is infinite (it grows like 1/η²).",
     "What is the reverse variance σ_t²(η) at η = 0, and what does the KL between a Gaussian and a point mass do?",
     choices={"a": "its reverse steps have zero variance, so every KL term of the bound is infinite",
              "b": "because it skips timesteps",
              "c": "because it was trained with L_simple, not the bound"})


# ----------------------------------------------------------------------------- asking and checking
def _get(qid) -> Question:
    if qid not in QUESTIONS:
        raise ValueError(f"qid must be one of the registered question ids ({', '.join(QUESTIONS)}), got {qid!r}")
    return QUESTIONS[qid]


def questions(notebook: str | None = None) -> list[str]:
    """The registered question ids, all or one notebook's (``"03"``)."""
    return [q for q in QUESTIONS if notebook is None or QUESTIONS[q].notebook == notebook]


def ask(qid: str) -> None:
    """Print question ``qid``, its choices (multiple choice) and how to answer it."""
    q = _get(qid)
    print(f"Question {qid}: {q.prompt}")
    for letter, text in q.choices.items():
        print(f"  ({letter}) {text}")
    print("Answer with a letter, e.g. answer = \"a\"." if q.choices else "Answer with a number, e.g. answer = 0.5.")


def check_answer(qid: str, answer) -> bool | None:
    """Print ✓ (with why) or ✗ (with a hint) for ``answer`` to question ``qid``; return True or
    False, or None (and "not answered yet") for a blank answer (``None`` or an empty string)."""
    q = _get(qid)
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        print(f"Question {qid}: not answered yet — set answer above and run this cell again.")
        return None
    if q.choices:
        given = str(answer).strip().lower().strip("()")
        if given not in q.choices:
            print(f"✗ {qid}: {answer!r} is not one of the choices {', '.join(q.choices)}; answer with a letter.")
            return False
        right = given == q.answer
    else:
        try:
            if isinstance(answer, bool) or not isinstance(answer, (numbers.Real, str)):
                raise TypeError
            value = float(answer)
        except (TypeError, ValueError):
            print(f"✗ {qid}: {answer!r} is not a number; answer with a number, e.g. 0.5.")
            return False
        right = math.isfinite(value) and abs(value - float(q.answer)) <= q.tol + 1e-12 * abs(float(q.answer))
    print(f"✓ {qid}: right. {q.explanation}" if right else f"✗ {qid}: not quite. Hint: {q.hint}")
    return right
