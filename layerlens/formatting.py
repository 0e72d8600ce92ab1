"""Numbers in words, the same on every page."""
from __future__ import annotations


def percent(value: float) -> str:
    """0.979 → '97.9%'; a diverged run's missing accuracy → '—'."""
    return "—" if value != value else f"{value:.1%}"


def seconds(value: float) -> str:
    """A wait in words: '3 s', '40 s', '2 min'."""
    if value < 60:
        return f"{max(1, round(value))} s"
    return f"{round(value / 60)} min"


def time_left(elapsed: float, done: int, total: int) -> str:
    """' · about 6 s left' once `done` of `total` like steps took `elapsed` seconds; '' before the first is done."""
    return f" · about {seconds(elapsed / done * (total - done))} left" if 0 < done < total else ""


def plural(count: int, noun: str) -> str:
    """1, 'epoch' → '1 epoch'; 3, 'epoch' → '3 epochs'."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def sure(probabilities, classes) -> str:
    """'**87% sure this is a 7**': the top class of a probability vector, in bold."""
    best = int(probabilities.argmax())
    name = str(classes[best])
    article = "an" if name[0].lower() in "aeiou8" else "a"  # an 8, an airplane; a 7, a ship
    return f"**{probabilities[best]:.0%} sure this is {article} {name}**"
