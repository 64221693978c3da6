"""Instruction template pools, one pool per task, and the Alpaca-style prompt frame.

Every wording here is our own. A template is an (instruction, response) pair of ``str.format`` strings over
named fields; the builders fill the fields and :mod:`lcrec.tasks.dataset` picks one template per example per
epoch. A template is only eligible for an example when every field it names is non-empty (an item without a
description never gets a description template).

Fields: ``history`` (item codes or quoted titles joined with ", ", oldest first), ``item`` (an item's code
string), ``title``, ``description``, ``query`` (a user's intention), ``preference`` (a user's taste summary),
``candidates`` (lettered candidate lines, RANK), ``letter`` (the answer's letter), ``user`` (a user's code string,
``<ua_3><ub_17><uc_9>``), ``choosers`` (user codes joined with ", "), ``rated`` (item codes each followed by the
user's stars, ``<a_1><b_2><c_3> (4 stars)``) and ``rating`` (stars as a digit).

The full training text is ``render_prompt(instruction) + response``: the prompt ends with ``### Response:`` and
the response follows without a separator, as in LC-Rec's data, so a model tuned on either reads the other.

Next-item pools (:data:`NEXT_ITEM_POOLS`) are the ones a model is scored and served with. Their responses end
with ``{item}``; whatever comes before it is written into the prompt when a row is scored
(:meth:`Template.scoring_pair`). A SEQ response is ``{item}`` alone; a SEQ-all response is ``{history}, {item}``:
in training every item of the window is a target, and at test time the prompt ends with the history and ", ".
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

PROMPT_HEADER = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
)


def render_prompt(instruction: str) -> str:
    """The Alpaca-style prompt around one instruction, ending with ``### Response:``."""
    return f"{PROMPT_HEADER}\n\n### Instruction:\n{instruction}\n\n### Response:"


@dataclass(frozen=True)
class Template:
    """One wording of a task: ``instruction`` and ``response`` are format strings over named fields."""

    id: str
    instruction: str
    response: str

    @cached_property
    def fields(self) -> frozenset[str]:
        names = set()
        for text in (self.instruction, self.response):
            names |= {name for _, name, _, _ in string.Formatter().parse(text) if name}
        return frozenset(names)

    def fits(self, values: Mapping[str, str]) -> bool:
        """True when every field this template names has a non-empty value."""
        return all(values.get(name) for name in self.fields)

    def fill(self, values: dict[str, str]) -> tuple[str, str]:
        """(instruction, response) with the fields filled in."""
        missing = sorted(name for name in self.fields if not values.get(name))
        if missing:
            raise KeyError(f"template {self.id} needs field(s) {', '.join(missing)} that the example lacks")
        return self.instruction.format(**values), self.response.format(**values)

    def scoring_prompt(self, values: Mapping[str, str]) -> str:
        """The whole prompt of a next-item template: the instruction framed by :func:`render_prompt`, then the
        response's text before ``{item}`` (empty for SEQ, the history and ", " for SEQ-all)."""
        lead, sep, _ = self.response.partition("{item}")
        if not sep:
            raise ValueError(f"template {self.id} has no {{item}} in its response, so it cannot be scored")
        missing = sorted(n for n in self.fields - {"item"} if not values.get(n))
        if missing:
            raise KeyError(f"template {self.id} needs field(s) {', '.join(missing)} that the example lacks")
        return render_prompt(self.instruction.format(**values)) + lead.format(**values)

    def scoring_pair(self, values: Mapping[str, str]) -> tuple[str, str]:
        """(whole prompt, answer) of a next-item template: the answer is the response from ``{item}`` on."""
        prompt = self.scoring_prompt(values)
        return prompt, ("{item}" + self.response.partition("{item}")[2]).format(**values)


def _pool(task: str, pairs: list[tuple[str, str]]) -> tuple[Template, ...]:
    return tuple(Template(f"{task}/{i}", ins, res) for i, (ins, res) in enumerate(pairs))


# --------------------------------------------------------------------------------------------------- SEQ
SEQ = _pool("seq", [
    ("Here is what a user interacted with, oldest first: {history}. Predict the item they will choose next.",
     "{item}"),
    ("A user's history of items, in the order they were consumed: {history}. Which item comes next?", "{item}"),
    ("Given the interaction sequence {history}, recommend the single item this user is most likely to pick "
     "up next.", "{item}"),
    ("The following items were chosen by one user over time: {history}. Name the next item in the sequence.",
     "{item}"),
    ("Look at this user's past choices ({history}) and tell me which item they will want after them.", "{item}"),
    ("You are a recommender system. The user's chronological history is {history}. Output the index of the "
     "next item.", "{item}"),
    ("Items already seen by the user, from first to most recent: {history}. What should we recommend next?",
     "{item}"),
    ("Continue this user's sequence of items with the one they are going to choose next: {history}", "{item}"),
    ("Based on the order in which the user engaged with {history}, predict their upcoming interaction.",
     "{item}"),
    ("This person went through the items {history}, in that order. Suggest the item that should follow.",
     "{item}"),
    ("History: {history}\nWhich item will this user interact with next? Answer with its index.", "{item}"),
    ("Considering everything this user has picked so far, namely {history}, which item is the best next "
     "recommendation?", "{item}"),
])

# --------------------------------------------------------------------------------------------------- SEQ-all
# One row per window of a user's training sequence: the response lists the window's items in order, so every
# item is a target given the items before it (the all-position loss SASRec trains with). The instruction names
# no item; scored, the prompt is the instruction followed by the history and ", ".
SEQALL = _pool("seqall", [
    ("List the items this user interacted with, oldest first.", "{history}, {item}"),
    ("Write down one user's history of items in chronological order.", "{history}, {item}"),
    ("You are a recommender system. Continue the user's sequence of items in the order they will choose them.",
     "{history}, {item}"),
    ("Give the items of a user's interaction history, each followed by the item the user picked next.",
     "{history}, {item}"),
    ("Recall the items one user chose, one after another, from the first to the latest.", "{history}, {item}"),
    ("Here is a task for a recommender: write the sequence of items a user engaged with, in time order.",
     "{history}, {item}"),
])

# --------------------------------------------------------------------------------------------------- USEQ
# SEQ-all with the user's own index in the instruction (TTDS, ULMRec): the same windows, the same responses, so
# one model scored with and without the user code reads the same item text after the instruction.
USEQ = _pool("useq", [
    ("List the items user {user} interacted with, oldest first.", "{history}, {item}"),
    ("Write down the history of items of user {user} in chronological order.", "{history}, {item}"),
    ("You are a recommender system serving user {user}. Continue their sequence of items in the order they will "
     "choose them.", "{history}, {item}"),
    ("User {user} picked items one after another. Give those items, each followed by the next one.",
     "{history}, {item}"),
    ("Recall the items that user {user} chose, from the first to the latest.", "{history}, {item}"),
    ("For the user indexed {user}, write the sequence of items they engaged with, in time order.",
     "{history}, {item}"),
])

# --------------------------------------------------------------------------------------------------- USER
# User-side alignment: the user index learns what the user did (history -> user), who chooses an item
# (previous choosers -> the next one, TTDS's user prediction) and how the user rates (ULMRec's rating task).
HISTORY2USER = _pool("user.history2user", [
    ("A user interacted with these items, oldest first: {history}. Which user is this? Answer with the user's "
     "index.", "{user}"),
    ("Identify the user whose item history is {history}.", "{user}"),
    ("History: {history}\nWrite the index of the user this history belongs to.", "{user}"),
    ("These items were chosen by one user, in order: {history}. Give that user's index.", "{user}"),
    ("Whose sequence of items is this? {history}", "{user}"),
    ("You are a recommender system. Match the interaction history {history} to the index of its user.", "{user}"),
])

PREDICT_USER = _pool("user.predict", [
    ("Item {item} was chosen by these users, earliest first: {choosers}. Which user will choose it next?",
     "{user}"),
    ("Users who picked {item} so far: {choosers}. Predict the next user to pick it.", "{user}"),
    ("The item {item} has been consumed by {choosers}, in that order. Name the user who comes next.", "{user}"),
    ("Who will be the next user to interact with {item}? Its previous users were {choosers}.", "{user}"),
    ("Earlier users of item {item}, oldest first: {choosers}\nWrite the index of the user who picks it next.",
     "{user}"),
    ("After {choosers} chose {item}, which user is most likely to choose it as well?", "{user}"),
])

RATE = _pool("user.rating", [
    ("User {user} rated these items, oldest first: {rated}. How many stars (1 to 5) will they give {item}?",
     "{rating}"),
    ("Ratings of user {user} so far: {rated}. Predict their rating of {item} from 1 to 5.", "{rating}"),
    ("Here is how user {user} scored past items: {rated}. What score out of 5 will {item} get from them?",
     "{rating}"),
    ("User {user}, history with ratings: {rated}\nRating of {item} (1-5):", "{rating}"),
    ("Given the ratings {rated} from user {user}, guess the stars (1-5) they give to {item}.", "{rating}"),
    ("User {user} has rated {rated}. On a scale of 1 to 5, how much will they like {item}?", "{rating}"),
])

# --------------------------------------------------------------------------------------------------- UPREF
USER2PREFERENCE = _pool("upref.user2preference", [
    ("Describe the preferences of user {user}.", "{preference}"),
    ("What kind of items does user {user} enjoy?", "{preference}"),
    ("Summarise the tastes of the user with index {user}.", "{preference}"),
    ("Write a short profile of what user {user} likes and dislikes.", "{preference}"),
    ("User {user}: explain their tastes in a few sentences.", "{preference}"),
    ("You are a recommender system. Tell me what user {user} tends to enjoy.", "{preference}"),
])

PREFERENCE2USER = _pool("upref.preference2user", [
    ("Which user matches this description of preferences? {preference}", "{user}"),
    ("Here is a user's taste profile: {preference} Give the index of that user.", "{user}"),
    ("Find the user described as follows and answer with their index: {preference}", "{user}"),
    ("Preferences: {preference}\nWhich user is it?", "{user}"),
    ("A user likes the following: {preference} Write that user's index.", "{user}"),
    ("You are a recommender system. Name the user whose tastes are: {preference}", "{user}"),
])

# --------------------------------------------------------------------------------------------------- MUT
ITEM2INDEX = _pool("mut.item2index", [
    ('Which item index belongs to the item titled "{title}"?', "{item}"),
    ('Give the index of this item: "{title}".', "{item}"),
    ('An item is called "{title}". Write down its index.', "{item}"),
    ('Map the title "{title}" to the matching item index.', "{item}"),
    ("Here is an item's description: {description} What is the index of that item?", "{item}"),
    ("Find the item that fits this description and output its index: {description}", "{item}"),
    ("Description of an item: {description}\nReturn the index that identifies it.", "{item}"),
    ("Which index stands for the item described as follows? {description}", "{item}"),
    ('The item "{title}" is described like this: {description} Tell me its index.', "{item}"),
    ('Title: "{title}". Details: {description} Which item index is this?', "{item}"),
    ('Using both the title "{title}" and the description "{description}", identify the item by its index.',
     "{item}"),
    ('Convert this item into its index. Name: "{title}". About it: {description}', "{item}"),
])

INDEX2ITEM = _pool("mut.index2item", [
    ("What is the title of the item {item}, and how would you describe it?", '"{title}". {description}'),
    ("Tell me the name and a short description of item {item}.", '"{title}". {description}'),
    ("The index {item} refers to an item. Give its title followed by its description.",
     '"{title}". {description}'),
    ("Describe the item with index {item}: start with its title, then its details.",
     '"{title}". {description}'),
    ("Decode the item index {item} into the item's title and description.", '"{title}". {description}'),
    ("Which item is {item}? Answer with its title and a description.", '"{title}". {description}'),
    ("Write the title and the description of the item whose index is {item}.", '"{title}". {description}'),
    ("What is the title of the item {item}?", '"{title}"'),
    ("Name the item that has the index {item}.", '"{title}"'),
    ("Item {item} has a title. What is it?", '"{title}"'),
])

# --------------------------------------------------------------------------------------------------- ASY
INDEX2TITLE = _pool("asy.index2title", [
    ("A user interacted with these items, oldest first: {history}. What is the title of the item they will "
     "choose next?", '"{title}"'),
    ("Given the sequence {history}, predict the next item and answer with its title.", '"{title}"'),
    ("Here is a user's history as item indices: {history}. Name the title of their next item.", '"{title}"'),
    ("From the chronological history {history}, write the title of the item this user will want next.",
     '"{title}"'),
    ("The user went through {history}. Which title will they pick after that?", '"{title}"'),
    ("Predict the upcoming item for a user whose past items are {history}; reply with the item's title only.",
     '"{title}"'),
    ("History (indices): {history}\nGive the title of the next recommended item.", '"{title}"'),
    ("Knowing the user engaged with {history} in that order, what title should come next?", '"{title}"'),
])

INDEX2DESC = _pool("asy.index2desc", [
    ("A user interacted with these items, oldest first: {history}. Describe the item they will choose next.",
     "{description}"),
    ("Given the sequence {history}, what does the user's next item look like? Give its description.",
     "{description}"),
    ("Here is a user's history as item indices: {history}. Write the features of the item they will pick "
     "next.", "{description}"),
    ("From the history {history}, predict the next item and answer with its description instead of its "
     "index.", "{description}"),
    ("History (indices): {history}\nDescribe the next item this user is going to want.", "{description}"),
    ("The user went through {history}. What are the characteristics of the item that follows?",
     "{description}"),
])

TITLE2INDEX = _pool("asy.title2index", [
    ("A user watched or bought these titles, oldest first: {history}. Give the index of the item they will "
     "choose next.", "{item}"),
    ("Here are the titles a user interacted with, in order: {history}. Which item index comes next?", "{item}"),
    ("Given the title history {history}, recommend the next item and answer with its index.", "{item}"),
    ("The user's past items by name: {history}. Predict the next one as an item index.", "{item}"),
    ("Titles in the user's history: {history}\nOutput the index of the item they will want next.", "{item}"),
    ("Knowing this person chose {history}, in that order, what index should we recommend next?", "{item}"),
    ("From the titles {history}, work out the user's taste and return the index of their next item.",
     "{item}"),
    ("After {history}, which item is this user most likely to choose? Reply with its index.", "{item}"),
])

# --------------------------------------------------------------------------------------------------- ITE
QUERY2INDEX = _pool("ite.query2index", [
    ('A user says: "{query}" Which item index best answers this request?', "{item}"),
    ("Find the item that matches what the user is asking for and give its index. Request: {query}", "{item}"),
    ('Search request: "{query}"\nReturn the index of the most suitable item.', "{item}"),
    ("Someone is looking for the following: {query} Recommend one item by its index.", "{item}"),
    ('Here is what a user wants right now: "{query}" Output the index of the item you would suggest.',
     "{item}"),
    ("Act as a search engine over the catalogue. Query: {query} Answer with the index of the best item.",
     "{item}"),
    ('Which item should we show a user who asks "{query}"? Give its index.', "{item}"),
    ("The user describes their need like this: {query} Pick the matching item and write its index.", "{item}"),
])

HISTORY_QUERY2INDEX = _pool("ite.history_query2index", [
    ('A user with the history {history} now says: "{query}" Which item index should we recommend?', "{item}"),
    ("Past items of the user: {history}. Their current request: {query} Recommend an item by its index.",
     "{item}"),
    ('History: {history}\nRequest: "{query}"\nReturn the index of the item that fits both.', "{item}"),
    ("Taking into account that the user chose {history}, find an item for this request and give its index: "
     "{query}", "{item}"),
    ('The user has interacted with {history}. They are now searching for "{query}". Which item matches?',
     "{item}"),
    ("Personalised search: the user's history is {history} and the query is: {query} Output one item index.",
     "{item}"),
    ("Given what this user liked before ({history}) and what they want now ({query}), which item index is "
     "the best answer?", "{item}"),
    ('Someone whose past items are {history} asks: "{query}" Recommend the most suitable item index.',
     "{item}"),
])

# --------------------------------------------------------------------------------------------------- PER
PREFERENCE = _pool("per.preference", [
    ("A user interacted with these items, oldest first: {history}. Describe this user's preferences.",
     "{preference}"),
    ("From the history {history}, summarise what kind of items this user enjoys.", "{preference}"),
    ("Here is a user's item history: {history}. What are their tastes?", "{preference}"),
    ("Based on the sequence {history}, write a short profile of the user's preferences.", "{preference}"),
    ("History: {history}\nExplain what this user tends to like and dislike.", "{preference}"),
    ("Looking at the items {history}, infer the user's interests in a few sentences.", "{preference}"),
    ("Analyse this user's past choices ({history}) and state their preferences.", "{preference}"),
    ("The user went through {history}. What does that tell us about what they like?", "{preference}"),
])

# --------------------------------------------------------------------------------------------------- NEG
DISLIKE = _pool("neg.dislike", [
    ("A user interacted with these items, oldest first: {history}. Name an item this user would probably "
     "not enjoy.", "{item}"),
    ("Given the history {history}, which item is the user unlikely to want? Answer with its index.", "{item}"),
    ("Here is what a user chose before: {history}. Suggest an item they would dislike.", "{item}"),
    ("History: {history}\nWhich item should we avoid recommending to this user? Give its index.", "{item}"),
    ("Based on the sequence {history}, pick an item that does not fit this user's taste.", "{item}"),
    ("What will the user with the history {history} dislike? Output one item index.", "{item}"),
    ("Considering this person's past items ({history}), name an item they would skip.", "{item}"),
    ("The user went through {history}. Which item would be a poor recommendation for them?", "{item}"),
])

# --------------------------------------------------------------------------------------------------- RANK
# ``candidates`` is a block of "A. <code>" lines (lcrec.decode.letters.list_candidates); the answer is one letter,
# written right after "### Response:" so that a single forward pass reads every letter's log-prob.
RANK = _pool("rank", [
    ("A user interacted with these items, oldest first: {history}.\nCandidates:\n{candidates}\nWhich candidate "
     "will the user choose next? Answer with its letter.", "{letter}"),
    ("History: {history}\nPick the item this user wants next from the list below and reply with its letter "
     "only.\n{candidates}", "{letter}"),
    ("Here are a user's past items in order: {history}. One of the following is their next item:\n{candidates}"
     "\nWhich letter is it?", "{letter}"),
    ("Rank these candidates for a user whose history is {history}, and give the letter of the best one.\n"
     "{candidates}", "{letter}"),
    ("The user went through {history}. Options:\n{candidates}\nSelect the option they will engage with next "
     "(letter only).", "{letter}"),
    ("Given a user who chose {history}, which of these items is the best next recommendation?\n{candidates}\n"
     "Reply with one letter.", "{letter}"),
    ("Candidates:\n{candidates}\nThis user's sequence so far is {history}. Which candidate follows it? Give "
     "the letter.", "{letter}"),
])

POOLS: dict[str, tuple[Template, ...]] = {
    pool[0].id.split("/")[0]: pool
    for pool in (SEQ, SEQALL, USEQ, HISTORY2USER, PREDICT_USER, RATE, USER2PREFERENCE, PREFERENCE2USER, ITEM2INDEX, INDEX2ITEM, INDEX2TITLE, INDEX2DESC, TITLE2INDEX, QUERY2INDEX,
                 HISTORY_QUERY2INDEX, PREFERENCE, DISLIKE, RANK)
}


def pool(task: str) -> tuple[Template, ...]:
    """The template pool of one task, e.g. ``pool("seq")``."""
    try:
        return POOLS[task]
    except KeyError:
        raise KeyError(f"no template pool for task {task!r}; known tasks: {', '.join(POOLS)}") from None


# The pools whose templates predict the next item from a history: scored by `lcrec evaluate`, served by
# `lcrec serve`.
NEXT_ITEM_POOLS = ("seq", "seqall", "useq")


def default_next_item_template(families: list[str] | tuple[str, ...] = ()) -> str:
    """The template a model is served with when none is named: ``seqall/0`` for a model tuned with SEQ-all and
    not SEQ, else ``seq/0``."""
    return "seqall/0" if "seqall" in families and "seq" not in families else "seq/0"


def next_item_template(name: str | int) -> Template:
    """A next-item template by id (``seq/3``, ``seqall/0``); a bare number means a SEQ wording (``3`` = ``seq/3``)."""
    text = str(name).strip()
    if text.lstrip("-").isdigit():
        text = f"seq/{int(text)}"
    task, _, number = text.rpartition("/")
    if task not in NEXT_ITEM_POOLS or not number.isdigit() or int(number) >= len(POOLS[task]):
        choices = ", ".join(f"{t}/0..{t}/{len(POOLS[t]) - 1}" for t in NEXT_ITEM_POOLS)
        raise ValueError(f"{name!r} is not a next-item template; choose one of {choices}")
    return POOLS[task][int(number)]


def next_item_prompt(history: str, template: str | int = "seq/0", user: str = "") -> str:
    """The whole prompt that asks for the item after ``history`` (codes joined with ", ", oldest first); a
    ``useq`` template also shows the ``user``'s code."""
    values = {"history": history, "user": user} if user else {"history": history}
    return next_item_template(template).scoring_prompt(values)
