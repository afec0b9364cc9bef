"""Feature services: the sets of families a typical model reads, declared as plain data.

A service is one Feast ``FeatureService`` (built in `medallion.serving.definitions`): a name, what it is
for, and the families whose every feature it serves. ``medallion features online|historical --service``
and the ``feature_service`` of a ``/get-online-features`` request name one. Families are named, never
their features, so a feature added to a family is served without a change here; a test checks that every
family named exists.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FeatureService:
    name: str
    description: str
    families: tuple[str, ...]
    owner: str = "medallion"


SERVICES: tuple[FeatureService, ...] = (
    FeatureService(
        name="ranking",
        description="A ranking model's input for a (user, item) pair: the user's activity and sessions, and "
        "the item's traffic and conversion. Entity rows need user_id and item_id.",
        families=("user_features", "item_features", "session_features"),
    ),
    FeatureService(
        name="user_profile",
        description="Who a user is: activity, the distribution of their order values and session lengths, "
        "and when they are active. Entity rows need user_id.",
        families=("user_features", "statistical_features", "temporal_features"),
    ),
    FeatureService(
        name="embeddings",
        description="The user's and the item's Word2Vec vectors, for retrieval and similarity. Entity rows "
        "need user_id and item_id.",
        families=("user_embeddings", "item_embeddings"),
    ),
)


def service(name: str) -> FeatureService:
    """The declared service ``name``; an unknown name is an error that lists the known ones."""
    for s in SERVICES:
        if s.name == name:
            return s
    raise KeyError(f"unknown feature service {name!r}; known: {', '.join(s.name for s in SERVICES)}")
