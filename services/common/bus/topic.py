"""AMQP topic-pattern matching, so the in-process bus routes exactly as RabbitMQ does.

A routing key and a binding pattern are words separated by ``.``. In a pattern the
word ``*`` stands for exactly one word and ``#`` for zero or more words; any other
word, including one that merely contains ``*`` or ``#``, must match literally.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["topic_matches"]


def _words(text: str) -> tuple[str, ...]:
    # RabbitMQ treats the empty key as zero words (so ``#`` matches it, ``*`` does not),
    # but keeps empty words between dots (``a..b`` has three words).
    return tuple(text.split(".")) if text else ()


@lru_cache(maxsize=4096)
def _pattern_words(pattern: str) -> tuple[str, ...]:
    # Bindings are few and matched against every published key: split each once.
    return _words(pattern)


def topic_matches(pattern: str, routing_key: str) -> bool:
    """True when ``routing_key`` would be routed by a topic binding with ``pattern``.

    Exists so that embedded mode (one process, no broker) delivers to the same
    queues a RabbitMQ topic exchange would.
    """
    pat = _pattern_words(pattern)
    key = _words(routing_key)
    # Dynamic programming over (pattern word, key prefix) keeps this O(len(pat) * len(key))
    # where naive backtracking on ``#`` is exponential.
    # reachable[j]: the pattern words seen so far can consume exactly key[:j].
    reachable = [True] + [False] * len(key)
    for word in pat:
        if word == "#":
            # ``#`` extends every reachable prefix by any number of words.
            seen = False
            for j in range(len(key) + 1):
                seen = seen or reachable[j]
                reachable[j] = seen
        else:
            for j in range(len(key), 0, -1):
                reachable[j] = reachable[j - 1] and (word == "*" or word == key[j - 1])
            reachable[0] = False
    return reachable[len(key)]
