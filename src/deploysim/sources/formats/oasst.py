"""OpenAssistant (OASST1/OASST2) message trees: one conversation per root-to-leaf path.

A row is ``{message_tree_id, tree_state, prompt}`` where ``prompt`` is the root message
``{message_id, text, role: prompter|assistant, lang, deleted, synthetic, review_result,
replies: [...]}`` and ``replies`` nest recursively. Each path from the root to a leaf is a
separate conversation with id ``<message_tree_id>:<leaf message_id>``, so sibling replies
(several ranked answers to one prompt) become sibling conversations sharing a prefix.

Deleted messages are pruned with everything below them (their parent becomes a leaf if no
other reply remains); a deleted root makes the whole row unusable. Synthetic (model-written)
messages and messages that failed review are kept and flagged in ``meta.extra``.

Paths repeat their shared beginning, so a prompt->answer pair near the root would be sampled
once per leaf below it. ``meta.extra.shared_prefix_messages = k`` says that the first ``k``
messages already appeared in an earlier conversation of the same tree: a user turn ``i`` is
new to this conversation only when its answer ``i + 1 >= k``.

The flat export (one message per row) needs rows joined across the file and is not read
here: use the tree export (``*.trees.jsonl``).
"""

from __future__ import annotations

from typing import Any

from deploysim.sources.formats import fields
from deploysim.sources.formats.base import RowError

NAME = "oasst"
#: auto-detection order (lower first); the registry sorts formats by it
DETECT_PRIORITY = 10

ROLES: dict[str, str] = {"prompter": "user", "assistant": "assistant"}


def detect(row: dict[str, Any]) -> bool:
    return "message_tree_id" in row and isinstance(row.get("prompt"), dict)


def convert(row: dict[str, Any], *, source: str, index: int) -> list[dict[str, Any]]:
    tree_id = fields.optional_str(row.get("message_tree_id"), "message_tree_id")
    if tree_id is None:
        raise RowError("message_tree_id: missing")
    root = fields.as_dict(row.get("prompt"), "prompt")
    if root.get("deleted"):
        raise RowError("prompt.deleted: the root message is deleted")
    tree_state = fields.optional_str(row.get("tree_state"), "tree_state")
    conversations = []
    previous: list[dict[str, Any]] = []
    for path in _leaf_paths(root):
        nodes = [node for node, _ in path]
        shared = _common_prefix(previous, nodes)
        previous = nodes
        leaf_id = fields.optional_str(nodes[-1].get("message_id"), f"{path[-1][1]}.message_id")
        if leaf_id is None:
            raise RowError(f"{path[-1][1]}.message_id: missing")
        messages = [
            fields.message(
                fields.map_role(node.get("role"), ROLES, f"{where}.role"),
                fields.text(node.get("text"), f"{where}.text"),
            )
            for node, where in path
        ]
        extra: dict[str, Any] = {
            "dataset": "oasst",
            "message_tree_id": tree_id,
            "synthetic": any(bool(node.get("synthetic")) for node in nodes),
            "failed_review": any(node.get("review_result") is False for node in nodes),
            "shared_prefix_messages": shared,
        }
        if tree_state is not None:
            extra["tree_state"] = tree_state
        conversations.append(
            fields.conversation(
                f"{tree_id}:{leaf_id}",
                messages,
                source=source,
                timestamp=fields.timestamp(root.get("created_date"), "prompt.created_date"),
                language=fields.optional_str(root.get("lang"), "prompt.lang"),
                extra=extra,
            )
        )
    return conversations


def _common_prefix(previous: list[dict[str, Any]], nodes: list[dict[str, Any]]) -> int:
    """How many leading messages this path shares with the one before it (the same message
    objects). Paths come depth-first, so that is everything it shares with any earlier path."""
    shared = 0
    for before, node in zip(previous, nodes, strict=False):
        if before is not node:
            break
        shared += 1
    return shared


def _leaf_paths(root: dict[str, Any]) -> list[list[tuple[dict[str, Any], str]]]:
    """Root-to-leaf paths of (message, field path), depth-first in reply order.

    Iterative, so a pathologically deep tree cannot exhaust Python's recursion limit.
    """
    paths: list[list[tuple[dict[str, Any], str]]] = []
    stack: list[list[tuple[dict[str, Any], str]]] = [[(root, "prompt")]]
    while stack:
        path = stack.pop()
        node, where = path[-1]
        replies = fields.as_list(node.get("replies") or [], f"{where}.replies")
        children = []
        for i, reply in enumerate(replies):
            child = fields.as_dict(reply, f"{where}.replies[{i}]")
            if not child.get("deleted"):
                children.append([*path, (child, f"{where}.replies[{i}]")])
        if children:
            stack.extend(reversed(children))
        else:
            paths.append(path)
    return paths
