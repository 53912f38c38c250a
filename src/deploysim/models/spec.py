"""A model spec: everything that decides what a model endpoint returns (``[models.NAME]``).

Its hash (``spec_hash``) keys completions and the response cache, so changing the model,
endpoint, prompts or sampling parameters never mixes old and new results.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from deploysim.hashing import content_hash

#: built-in provider names; plugins add others (``deploysim.providers`` entry points)
BUILTIN_PROVIDERS: tuple[str, ...] = ("openai", "anthropic", "embedded")


class SamplingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, gt=0)
    seed: int | None = None
    stop: list[str] | None = None
    #: anything else the endpoint accepts (e.g. ``logprobs``, ``response_format``)
    extra: dict[str, Any] = Field(default_factory=dict)


class Prices(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_per_mtok: float = Field(default=0.0, ge=0)
    output_per_mtok: float = Field(default=0.0, ge=0)

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1e6


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: a provider registered under the ``deploysim.providers`` entry points (built-in: openai,
    #: anthropic, embedded); checked against the registry before a run starts
    provider: str = "embedded"
    model: str = "smollm2-135m-instruct"
    base_url: str | None = None
    #: name of the environment variable holding the API key (the key itself is never stored)
    api_key_env: str | None = None
    #: system prompt per product context; key ``default`` applies where no context matches
    system_prompts: dict[str, str] = Field(default_factory=dict)
    params: SamplingParams = Field(default_factory=SamplingParams)
    samples: int = Field(default=1, ge=1)
    prices: Prices = Field(default_factory=Prices)
    #: endpoint limits: concurrent requests, requests and tokens per minute
    concurrency: int = Field(default=64, ge=1)
    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)
    timeout_s: float = Field(default=120.0, gt=0)
    max_attempts: int = Field(default=6, ge=1)
    #: give up on one request (all attempts and waits) after this many seconds
    deadline_s: float = Field(default=900.0, gt=0)
    #: adaptive concurrency: start at ``initial_concurrency`` (default half of
    #: ``concurrency``), grow while clean, halve on 429; false = always ``concurrency``
    adaptive: bool = True
    initial_concurrency: int | None = Field(default=None, ge=1)
    #: send work through the provider's batch API (OpenAI Batch) instead of online calls
    batch_api: bool = False
    #: embedded server only: parallel decoding slots and context tokens per slot
    slots: int = Field(default=4, ge=1)
    context_per_slot: int = Field(default=4096, ge=256)
    #: embedded server only: llama.cpp threads (None = half the cores; see models/embedded.py)
    threads: int | None = Field(default=None, ge=1)
    #: positive controls planted on top of the model (docs/forecasting.md, "Spike-ins"): each a
    #: table with ``kind`` and its settings; part of the spec's identity and of every request
    #: record; never on unless listed
    spike_ins: list[dict[str, Any]] = Field(default_factory=list)
    #: a prompt longer than the model's context: ``too_long`` (a counted, final error) or
    #: ``truncate_oldest`` (drop the oldest whole turns and send again; models/context_fit.py)
    context_overflow: Literal["too_long", "truncate_oldest"] = "too_long"

    def spec_hash(self) -> str:
        """Identity of what the model returns: excludes limits and prices, which change
        speed and cost but not outputs. Spike-ins and a non-default context rule join it only
        when set, so specs without them keep the hashes they always had."""
        ident = self.model_dump(mode="json",
                                include={"provider", "model", "base_url", "system_prompts", "params"})
        if self.spike_ins:
            ident["spike_ins"] = self.model_dump(mode="json", include={"spike_ins"})["spike_ins"]
        if self.context_overflow != "too_long":
            ident["context_overflow"] = self.context_overflow
        return content_hash(ident)

    def wrapper_records(self) -> tuple[dict[str, Any], ...]:
        """What wraps the model's answers (recorded on every request it makes)."""
        spikes = tuple({"spike_in": dict(s)} for s in self.spike_ins)
        rule = ({"context_overflow": self.context_overflow},) if self.context_overflow != "too_long" else ()
        return spikes + rule

    def system_prompt_for(self, product_context: str | None) -> str | None:
        if product_context and product_context in self.system_prompts:
            return self.system_prompts[product_context]
        return self.system_prompts.get("default")
