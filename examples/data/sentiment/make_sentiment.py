#!/usr/bin/env python3
"""Writes train.jsonl and val.jsonl: short synthetic English reviews labelled positive / negative / neutral.

Deterministic (seeded); standard library only. Run from anywhere:

    python3 examples/data/sentiment/make_sentiment.py

It prints the class counts, the majority-class baseline accuracy on val (always answering the most common training
label) and the val accuracy of a unigram naive Bayes classifier trained on train, a bag-of-words reference: it
cannot read negation ("not great") or contrast ("expected it to be great, but it was dull"), so a model that
does beats it.

Each review combines a subject with sentiment words in one of these patterns (label rule in brackets):
  plain      "The battery was really great."                       [the adjective's class]
  negated    "The battery was not great." / "...wasn't awful."     [flips: not positive -> negative, not negative -> positive]
  contrast   "I expected the plot to be dull, but it was superb."  [the clause after "but"]
  verb       "I loved the coffee." / "I didn't mind the coffee."   [the verb's class]
  mixed      "The room was neither great nor awful."               [neutral]
Some reviews get a filler sentence that carries no sentiment, and a few a short closing remark that agrees with the label.
Labels are drawn with unequal weights; val takes the same share of each class (a stratified split), so the most
common class is the same in both files.
"""
import json
import math
import os
import random
from collections import Counter

SEED = 1234
N_TRAIN = 1200
N_VAL = 300
# Unequal on purpose, so the majority-class baseline is a meaningful bar.
CLASS_WEIGHTS = {"positive": 0.42, "negative": 0.35, "neutral": 0.23}

SUBJECTS = [
    "the movie", "the plot", "the ending", "the phone", "the battery", "the screen", "the laptop",
    "the hotel", "the room", "the staff", "the pizza", "the coffee", "the service", "the book",
    "the app", "the game", "the headphones", "the shoes", "the concert", "the fries",
]
PLURAL = {"the headphones", "the shoes", "the fries"}
ADJECTIVES = {
    "positive": ["great", "excellent", "wonderful", "superb", "lovely", "amazing"],
    "negative": ["terrible", "awful", "boring", "poor", "horrible", "dull"],
    "neutral": ["okay", "average", "fine", "ordinary", "adequate", "so-so"],
}
INTENSIFIERS = ["", "", "", "really ", "very ", "quite "]
VERBS = {
    "positive": ["loved", "enjoyed", "really liked"],
    "negative": ["hated", "disliked", "could not stand"],
    "neutral": ["didn't mind", "had mixed feelings about", "could take or leave"],
}
OPENERS = ["", "", "", "", "Honestly, ", "Overall, "]
FILLERS = [
    "We went on a Sunday.", "I got it last week.", "My sister picked it.", "It was my first time.",
]
CLOSERS = {
    "positive": ["Five stars.", "Would recommend."],
    "negative": ["One star.", "Never again."],
    "neutral": ["Three stars.", "Nothing special."],
}
FLIP = {"positive": "negative", "negative": "positive"}


def capitalise(s):
    return s[0].upper() + s[1:]


def review(rng, label):
    """One review text with the given label."""
    subject = rng.choice(SUBJECTS)
    was, it_was = ("were", "they were") if subject in PLURAL else ("was", "it was")
    patterns = ["plain", "contrast", "verb"]
    if label != "neutral":
        patterns.append("negated")
    else:
        patterns.append("mixed")
    pattern = rng.choices(patterns, weights=[40, 22, 18, 20])[0]
    if pattern == "plain":
        body = f"{subject} {was} {rng.choice(INTENSIFIERS)}{rng.choice(ADJECTIVES[label])}."
    elif pattern == "negated":
        adjective = rng.choice(ADJECTIVES[FLIP[label]])
        body = rng.choice([f"{subject} {was} not {adjective}.", f"{subject} {was}n't {adjective} at all.", f"{subject} {was} not very {adjective}."])
    elif pattern == "contrast":
        other = rng.choice([c for c in ADJECTIVES if c != label])
        body = f"I expected {subject} to be {rng.choice(ADJECTIVES[other])}, but {it_was} {rng.choice(INTENSIFIERS)}{rng.choice(ADJECTIVES[label])}."
    elif pattern == "verb":
        body = f"I {rng.choice(VERBS[label])} {subject}."
    else:  # mixed
        body = f"{subject} {was} neither {rng.choice(ADJECTIVES['positive'])} nor {rng.choice(ADJECTIVES['negative'])}."
    opener = rng.choice(OPENERS)
    text = opener + body if opener else capitalise(body)
    if rng.random() < 0.12:
        text = rng.choice(FILLERS) + " " + text if rng.random() < 0.5 else text + " " + rng.choice(FILLERS)
    if rng.random() < 0.08:
        text += " " + rng.choice(CLOSERS[label])
    return text


def generate(rng, n):
    """n distinct (text, label) pairs, labels drawn with CLASS_WEIGHTS."""
    labels = list(CLASS_WEIGHTS)
    weights = [CLASS_WEIGHTS[c] for c in labels]
    seen = set()
    out = []
    while len(out) < n:
        label = rng.choices(labels, weights=weights)[0]
        text = review(rng, label)
        if text in seen:
            continue
        seen.add(text)
        out.append((text, label))
    return out


def stratified_split(rows, n_val):
    """(train, val): val takes the last rows of each class in proportion, so both files share the class mix."""
    by_class = {}
    for i, (_, label) in enumerate(rows):
        by_class.setdefault(label, []).append(i)
    classes = sorted(by_class)
    quota = {c: round(n_val * len(by_class[c]) / len(rows)) for c in classes}
    quota[max(classes, key=lambda c: len(by_class[c]))] += n_val - sum(quota.values())
    val_idx = {i for c in classes for i in by_class[c][len(by_class[c]) - quota[c]:]}
    train = [r for i, r in enumerate(rows) if i not in val_idx]
    val = [r for i, r in enumerate(rows) if i in val_idx]
    return train, val


def words(text):
    return text.lower().replace(".", " ").replace(",", " ").split()


def naive_bayes_accuracy(train, val):
    """Val accuracy of multinomial naive Bayes on unigrams (add-one smoothing), trained on train."""
    classes = sorted({label for _, label in train})
    prior = Counter(label for _, label in train)
    counts = {c: Counter() for c in classes}
    for text, label in train:
        counts[label].update(words(text))
    vocab = {w for c in classes for w in counts[c]}
    totals = {c: sum(counts[c].values()) for c in classes}

    def score(text, c):
        s = math.log(prior[c] / len(train))
        for w in words(text):
            s += math.log((counts[c][w] + 1) / (totals[c] + len(vocab)))
        return s

    right = sum(1 for text, label in val if max(classes, key=lambda c: score(text, c)) == label)
    return right / len(val)


def main():
    rng = random.Random(SEED)
    rows = generate(rng, N_TRAIN + N_VAL)
    train, val = stratified_split(rows, N_VAL)
    here = os.path.dirname(os.path.abspath(__file__))
    for name, part in (("train.jsonl", train), ("val.jsonl", val)):
        with open(os.path.join(here, name), "w", encoding="utf-8", newline="\n") as f:
            for text, label in part:
                f.write(json.dumps({"text": text, "label": label}) + "\n")
    train_counts = Counter(label for _, label in train)
    val_counts = Counter(label for _, label in val)
    majority = train_counts.most_common(1)[0][0]
    print(f"train: {len(train)} reviews {dict(sorted(train_counts.items()))}")
    print(f"val: {len(val)} reviews {dict(sorted(val_counts.items()))}")
    print(f"val majority-class baseline (always {majority!r}): {val_counts[majority] / len(val):.4f}")
    print(f"val unigram naive Bayes accuracy: {naive_bayes_accuracy(train, val):.4f}")


if __name__ == "__main__":
    main()
