"""Recognizers for credentials: API keys and tokens, private keys, assigned secrets, and URLs
that carry credentials. Presidio has none of these, and coding or agent traffic is full of them.

Entity types: ``API_KEY`` (a token with a vendor's known shape, a JWT, a bearer token),
``PRIVATE_KEY`` (a PEM block), ``SECRET`` (a value assigned to a name such as ``password`` or
``client_secret``) and ``URL_CREDENTIAL`` (only the credential part of a URL — user:password,
a token query parameter, a webhook path — so the rest of the URL stays readable).
"""

from __future__ import annotations

import regex

from deploysim.deidentify.rules import Rule, RuleRecognizer

#: (name, pattern) of API keys and tokens whose shape identifies the vendor
KEY_SHAPES: tuple[tuple[str, str], ...] = (
    ("openai/anthropic", r"sk-(?:proj-|svcacct-|admin-|ant-(?:api|admin)\d\d-)?[A-Za-z0-9_\-]{20,}"),
    ("github", r"(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})"),
    ("gitlab", r"glpat-[A-Za-z0-9_\-]{20,}"),
    ("slack", r"xox[abposr]-[A-Za-z0-9\-]{10,}"),
    ("aws access key", r"(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}"),
    ("google", r"AIza[0-9A-Za-z_\-]{35}"),
    ("stripe", r"(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"),
    ("hugging face", r"hf_[A-Za-z0-9]{30,}"),
    ("sendgrid", r"SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}"),
    ("npm", r"npm_[A-Za-z0-9]{36}"),
    ("pypi", r"pypi-[A-Za-z0-9_\-]{50,}"),
    ("jwt", r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
)

#: values that are placeholders or code, not secrets
_PLACEHOLDER = regex.compile(
    r"^(?:\*+|x+|\.+|<.*>|\{.*\}|\$\{?.*|%\w*%?|none|null|nil|true|false|undefined|changeme|"
    r"password|secret|token|your[_\- ]?\w*|my[_\- ]?\w*|example\w*|redacted|\[redacted\]|"
    r"(?:os\.|process\.|env\.|getenv|config\.|settings\.|self\.|this\.|input|prompt)\S*)$",
    regex.IGNORECASE,
)
_IDENTIFIER = regex.compile(r"^[a-z_][a-z0-9_.]*(?:\(\))?$")


def _secret_ok(value: str) -> bool:
    return len(value) >= 4 and not _PLACEHOLDER.match(value) and "<" not in value


def _unquoted_secret_ok(value: str) -> bool:
    """Unquoted values are often variable names (``password = user_input``): require a digit or
    symbol mix and some length, and reject lower-case identifiers."""
    if not _secret_ok(value) or _IDENTIFIER.match(value) or len(value) < 6:
        return False
    return any(c.isdigit() for c in value) or any(not c.isalnum() for c in value)


def api_key_recognizer() -> RuleRecognizer:
    rules = [
        Rule(name, rf"(?<![A-Za-z0-9_\-]){pattern}(?![A-Za-z0-9_\-])", 0.9) for name, pattern in KEY_SHAPES
    ]
    rules.append(Rule("bearer token", r"(?i:\bbearer)\s+(?P<v>[A-Za-z0-9._~+/\-]{16,}=*)", 0.8, group="v"))
    return RuleRecognizer("DeploysimApiKeyRecognizer", "API_KEY", rules)


def private_key_recognizer() -> RuleRecognizer:
    begin = r"-----BEGIN (?P<kind>[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----"
    rules = [
        Rule("pem block", begin + r"[\s\S]*?-----END (?P=kind)-----", 1.0),
        # a block cut off before its END line (logs truncate): the header and its base64 lines
        Rule("truncated pem block", begin + r"(?:[ \t]*\r?\n[ \t]*[A-Za-z0-9+/=:,\-]+)*", 1.0),
    ]
    return RuleRecognizer("DeploysimPrivateKeyRecognizer", "PRIVATE_KEY", rules)


_SECRET_NAMES = (
    r"(?:password|passwd|pwd|passphrase|secret|client_secret|secret_key|api[_\-]?key|apikey|"
    r"access[_\-]?key(?:_id)?|access[_\-]?token|auth[_\-]?token|refresh[_\-]?token|id[_\-]?token|"
    r"token|private[_\-]?key|aws_secret_access_key|credentials?|authorization)"
)


def secret_recognizer() -> RuleRecognizer:
    name = rf"(?i:\b[\w\-]*{_SECRET_NAMES})[\"']?"
    rules = [
        Rule(
            "quoted assignment",
            name + r"\s*(?:=|:|=>)\s*(?P<q>[\"'])(?P<v>[^\"'\n]{4,200})(?P=q)",
            0.7,
            group="v",
            validate=_secret_ok,
        ),
        Rule(
            "unquoted assignment",
            name + r"\s*(?:=|:)\s*(?P<v>[^\s\"',;)}\]]{6,200})",
            0.6,
            group="v",
            validate=_unquoted_secret_ok,
        ),
        Rule(
            "stated password",
            r"(?i:\b(?:password|passcode|passphrase|pin)\s+(?:is|was)\s*:?)\s*"
            r"(?P<v>\S{4,100}?)(?=[.,;!?]?(?:\s|$))",
            0.6,
            group="v",
            validate=_secret_ok,
        ),
    ]
    return RuleRecognizer("DeploysimSecretRecognizer", "SECRET", rules)


_TOKEN_PARAMS = (
    r"(?:access_token|token|api_key|apikey|key|auth|authorization|sig|signature|x-amz-signature|"
    r"x-amz-credential|x-amz-security-token|password|pwd|secret|client_secret|code|session|"
    r"sessionid|sid|jwt|id_token|refresh_token|private_token)"
)


def url_credential_recognizer() -> RuleRecognizer:
    rules = [
        Rule(
            "user:password in url", r"(?i:\b[a-z][a-z0-9+.\-]*://)(?P<v>[^\s/@:]+:[^\s/@]+)@", 0.9, group="v"
        ),
        Rule("token as url user", r"(?i:\b[a-z][a-z0-9+.\-]*://)(?P<v>[A-Za-z0-9_\-]{16,})@", 0.8, group="v"),
        Rule(
            "token query parameter",
            rf"(?i:[?&#;]{_TOKEN_PARAMS}=)(?P<v>[^&#\s\"'<>]{{6,}})",
            0.8,
            group="v",
            validate=_secret_ok,
        ),
        Rule(
            "webhook path",
            r"(?i:hooks\.slack\.com/services/|discord(?:app)?\.com/api/webhooks/)"
            r"(?P<v>[A-Za-z0-9_\-/]{10,})",
            0.9,
            group="v",
        ),
    ]
    return RuleRecognizer("DeploysimUrlCredentialRecognizer", "URL_CREDENTIAL", rules)
