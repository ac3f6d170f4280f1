"""The HTTP API's request and response models (pydantic, only here at the HTTP boundary), in the OpenAI field order.

``/v1/chat/completions`` and ``/v1/models`` follow the OpenAI API (as vLLM does); mmcot's extra request fields
(``strategy``, ``budget``, ``strategy_options``) come after the standard ones. ``/v1/solve`` is mmcot's own: image(s)
and a question in, the answer and the full reasoning trace (thoughts, tool calls, intermediate images) out.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_N = 16  # choices per chat completion


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")  # like vLLM: unknown request fields are ignored, not an error


# ---------------------------------------------------------------------------------------------------- errors


class ErrorInfo(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorInfo


# ---------------------------------------------------------------------------------------------------- requests


class ImageURL(_Model):
    url: str = Field(
        description="A data URL (data:image/png;base64,...); file:// URLs only when the server enables them"
    )
    detail: Literal["auto", "low", "high"] | None = None


class TextPart(_Model):
    type: Literal["text"]
    text: str


class ImagePart(_Model):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class FunctionCall(_Model):
    name: str
    arguments: str = Field(description="The arguments as a JSON object in a string")


class ToolCall(_Model):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(_Model):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None


class FunctionDefinition(_Model):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    parameters: dict[str, Any] | None = None


class ToolDefinition(_Model):
    type: Literal["function"]
    function: FunctionDefinition


class NamedToolChoiceFunction(_Model):
    name: str


class NamedToolChoice(_Model):
    type: Literal["function"]
    function: NamedToolChoiceFunction


class StreamOptions(_Model):
    include_usage: bool = False


class Budget(_Model):
    """Limits of one agent run; when one is hit the run ends with the best answer so far."""

    max_steps: int | None = Field(None, ge=1, le=1000, description="Model and tool steps")
    max_tokens: int | None = Field(None, ge=1, description="Generated tokens over the whole run")
    max_seconds: float | None = Field(None, gt=0, description="Wall time (the server's request timeout caps it)")


class ChatCompletionRequest(_Model):
    messages: list[ChatMessage] = Field(min_length=1)
    model: str
    max_tokens: int | None = Field(
        None, ge=1, description="Generated tokens per model call and over the whole run (deprecated OpenAI name)"
    )
    max_completion_tokens: int | None = Field(
        None, ge=1, description="Generated tokens per model call and over the whole run, thoughts included"
    )
    n: int = Field(1, ge=1, le=MAX_N)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    tools: list[ToolDefinition] | None = Field(
        None,
        description="Functions the model may call. Names of mmcot tools (see GET /v1/tools) run server-side in the "
        "agent loop; other functions are returned to the client as tool_calls (finish_reason 'tool_calls').",
    )
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    user: str | None = None
    strategy: str | None = Field(None, description="mmcot strategy (overrides the one in the model name)")
    budget: Budget | None = None
    strategy_options: dict[str, Any] | None = Field(None, description="The strategy's knobs (mmcot strategies)")


class SolveRequest(_Model):
    images: list[str] = Field(
        default_factory=list, description="Data URLs or bare base64 (file:// URLs only when the server enables them)"
    )
    question: str = Field(min_length=1)
    choices: list[str] | None = None
    model: str | None = Field(None, description="Served model id; the default when omitted")
    strategy: str = "cot"
    budget: Budget | None = None
    strategy_options: dict[str, Any] | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1, description="Tokens per model call")
    stream: bool = Field(False, description="Send each step as a server-sent event, then the result")


# ---------------------------------------------------------------------------------------------------- responses


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    reasoning_content: str | None = Field(None, description="Thoughts and tool steps before the answer")
    tool_calls: list[ToolCall] | None = None


class Choice(BaseModel):
    index: int
    message: ResponseMessage
    finish_reason: Literal["stop", "length", "tool_calls"]


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class ChunkChoice(BaseModel):
    index: int
    delta: Delta
    finish_reason: Literal["stop", "length", "tool_calls"] | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "mmcot"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ToolInfo(BaseModel):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class ToolList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ToolInfo]


class TraceNode(BaseModel):
    id: int
    kind: str
    text: str = ""
    parents: list[int] = Field(default_factory=list)
    images: list[str] = Field(default_factory=list, description="Image ids, keys of Trace.images")
    tool_call: dict[str, Any] | None = None
    score: float | None = None
    tokens: int = 0
    meta: dict[str, Any] = Field(default_factory=dict)


class TraceModel(BaseModel):
    strategy: str
    question: str = ""
    nodes: list[TraceNode] = Field(default_factory=list)
    answer: str = ""
    stop_reason: str = ""
    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tool_calls: int = 0
    seconds: float = 0.0
    images: dict[str, str] = Field(default_factory=dict, description="Image id -> PNG data URL")


class SolveResponse(BaseModel):
    id: str
    object: Literal["mmcot.solve"] = "mmcot.solve"
    created: int
    model: str
    strategy: str
    answer: str
    stop_reason: str
    trace: TraceModel
    usage: Usage
