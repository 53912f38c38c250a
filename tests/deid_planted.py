"""Conversations with planted personal data, and the list of what was planted, for the
de-identification tests. Every value is made up (reserved example domains, documentation IP
ranges, test card and IBAN numbers with valid checksums)."""

from __future__ import annotations

import orjson

from deploysim.records import Conversation, ConversationMeta, Message, ToolCall, ToolSpec

PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq3xW9yZ2X1mK4Q8Lw0pQ3F\n"
    "k9Zr5T2yHn8cB6vJ1sD4aE7fG0hI3jK6lM9nO2p\n-----END RSA PRIVATE KEY-----"
)

#: kind -> values exactly as they appear in the conversations below
PLANTED: dict[str, tuple[str, ...]] = {
    "person": ("Lina Artemova", "Daniel Thompson", "Priya Raman"),
    "email": ("lina.artemova@example.com", "d.thompson@example.org"),
    "phone": ("+44 7700 900123", "(415) 555-0134"),
    "address": ("4923 Parmova 109", "1668 Glyn Street, Springfield, IL 62704"),
    "credit_card": ("4111 1111 1111 1111", "5500-0000-0000-0004"),
    "iban": ("DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432"),
    "ip": ("203.0.113.7", "2001:db8::8a2e:370:7334"),
    "api_key": (
        "sk-proj-Qm3x9TfLw2RbZ8kVn4YpJ7cH",
        "ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5",
        "AKIAIOSFODNN7EXAMPLE",
    ),
    "url_token": ("9f8e7d6c5b4a3210fe", "admin:hunter2pass"),
    "secret": ("Tr0ub4dor&3x",),
    "ssn": ("536-22-1847",),
    "passport": ("X12345678",),
    "private_key": ("MIIEowIBAAKCAQEA7bq3xW9yZ2X1mK4Q8Lw0pQ3F",),
}


def planted_values() -> list[str]:
    return [v for values in PLANTED.values() for v in values]


LOOKUP = ToolSpec(
    name="lookup_customer",
    description="Find a customer record by e-mail address.",
    parameters={"type": "object", "properties": {"email": {"type": "string"}}, "required": ["email"]},
)


def support_conversation() -> Conversation:
    """A customer-support conversation with a tool call; names recur across turns and tools."""
    record = {
        "customer": {
            "name": "Lina Artemova",
            "email": "lina.artemova@example.com",
            "phone": "+44 7700 900123",
            "address": "4923 Parmova 109, Maribor",
        },
        "last_login_ip": "203.0.113.7",
    }
    return Conversation(
        id="support-1",
        tools=(LOOKUP,),
        meta=ConversationMeta(
            source="planted",
            product_context="customer_support",
            language="en",
            extra={"client_ip": "2001:db8::8a2e:370:7334"},
        ),
        messages=(
            Message(role="system", content="You are the support assistant of Acme Travel."),
            Message(
                role="user",
                name="lina_a",
                content="Hi, my name is Lina Artemova and my card 4111 1111 1111 1111 was charged twice. "
                "My email is lina.artemova@example.com.",
            ),
            Message(
                role="assistant",
                content="",
                tool_calls=(
                    ToolCall(
                        id="call_1",
                        name="lookup_customer",
                        arguments='{"email": "lina.artemova@example.com", "note": "caller Lina Artemova"}',
                    ),
                ),
            ),
            Message(
                role="tool",
                tool_call_id="call_1",
                name="lookup_customer",
                content=orjson.dumps(record).decode(),
            ),
            Message(
                role="assistant", content="Thanks Lina, I found your booking. I will refund the duplicate."
            ),
            Message(
                role="user",
                content="Great. Please wire it to DE89 3704 0044 0532 0130 00, or call me on "
                "+44 7700 900123. My SSN is 536-22-1847 and passport number X12345678.",
            ),
            Message(
                role="assistant", content="Done, Lina Artemova. The refund goes to your IBAN within 5 days."
            ),
        ),
    )


def coding_conversation() -> Conversation:
    """A coding-assistant conversation full of credentials."""
    config = (
        "DB_URL = 'postgres://admin:hunter2pass@db.internal.example.net/prod'\n"
        "EXPORT = 'https://api.example.com/v1/export?access_token=9f8e7d6c5b4a3210fe'\n"
        "OPENAI_API_KEY = 'sk-proj-Qm3x9TfLw2RbZ8kVn4YpJ7cH'\nAWS_ACCESS_KEY_ID = AKIAIOSFODNN7EXAMPLE\n"
        "password = 'Tr0ub4dor&3x'\n"
    )
    return Conversation(
        id="coding-1",
        meta=ConversationMeta(source="planted", product_context="coding_assistant", language="en"),
        messages=(
            Message(role="user", content="Why does my deploy fail? Here is my config:\n" + config),
            Message(
                role="assistant",
                content="Your config embeds credentials; move them to environment variables.",
            ),
            Message(
                role="user",
                content="Also the GitHub token ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5 stopped "
                "working, and this key leaked:\n" + PRIVATE_KEY,
            ),
            Message(role="assistant", content="Revoke both now and issue new ones."),
        ),
    )


def letter_conversation() -> Conversation:
    """General chat: a letter to a landlord, with a second person and a US address."""
    return Conversation(
        id="letter-1",
        meta=ConversationMeta(source="planted", product_context="general_chat", language="en"),
        messages=(
            Message(
                role="user",
                content="Write to my landlord Daniel Thompson (d.thompson@example.org, "
                "(415) 555-0134). I live at 1668 Glyn Street, Springfield, IL 62704. "
                "Sign it Priya Raman.",
            ),
            Message(
                role="assistant",
                content="Dear Daniel Thompson,\n\nthe heating at 1668 Glyn Street, "
                "Springfield, IL 62704 has been broken for a week...\n\n"
                "Kind regards,\nPriya Raman",
            ),
            Message(
                role="user",
                content="Add that the rent is paid by card 5500-0000-0000-0004 from GB82WEST12345698765432.",
            ),
            Message(role="assistant", content="Added: Daniel, the rent is paid on time every month."),
        ),
    )


def planted_conversations() -> list[Conversation]:
    return [support_conversation(), coding_conversation(), letter_conversation()]
