"""``mmcot chat``: a terminal chat over the controller, its strategies and tools, with images.

    mmcot chat                                  # a new session on the default model (smol; tiny if smol is absent)
    mmcot chat --list                           # past sessions
    mmcot chat --resume 20261129-a1b2c3         # continue one (an id prefix is enough)
    mmcot chat -p "How many circles?" --image scene.png   # answer once and exit (scriptable)

Attach images with ``/image PATH`` or by typing (or dropping) an image path into the message. Answers stream; thoughts
show dimmed and collapse when done; tool calls and their results appear as they happen, and images made by tools are
saved to the session folder and previewed in the terminal. Enter sends, Alt-Enter (or a line ending in ``\\``) adds
a line; Ctrl-C cancels the current answer, Ctrl-D or ``/quit`` leaves. Each session is one conversation thread of
the controller's SQLite checkpointer plus a transcript in ``sessions.sqlite`` (see ``chat_store``). When input or
output is not a terminal, the chat reads plain lines and prints plain text.
"""

from __future__ import annotations

import queue
import re
import shlex
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from mmcot.agent.chat_store import Session, SessionStore, Turn
from mmcot.agent.chat_view import PlainView, RichView, describe_call, make_view, reply_text

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
PATH_TOKEN = re.compile(r"'([^']+)'|\"([^\"]+)\"|((?:\\ |\S)+)")
COMMANDS = {
    "/image": "PATH...            attach image(s) to your next message (or type a path in the message)",
    "/strategy": "[NAME [k=v ...]]   show or set the reasoning strategy and its knobs",
    "/tools": "[a,b | default]      show or set the tools the model may call",
    "/model": "[SPEC]               show or switch the model (tiny, smol, a folder, openai:URL#model)",
    "/thoughts": "                   toggle showing thoughts in full (they collapse by default)",
    "/trace": "                     show the last answer's whole trace (thoughts, tool calls, images)",
    "/save": "[PATH]                 save the transcript as Markdown (default: the session folder)",
    "/reset": "                     start over in a new session",
    "/help": "                      this list",
    "/quit": "                      leave (Ctrl-D works too)",
}


class ChatError(Exception):
    """A problem the user can fix (bad model, strategy, image or session id); the message says what."""


@dataclass
class ChatConfig:
    model: str = field(
        default="", metadata={"help": "model spec: tiny, smol, a folder, openai:URL#model (default: default_model())"}
    )
    strategy: str = field(default="image-loop", metadata={"help": "reasoning strategy (mmcot strategies)"})
    options: dict[str, Any] = field(default_factory=dict, metadata={"help": "the strategy's knobs"})
    tools: str | None = field(default=None, metadata={"help": "comma-separated tools (default: the strategy's)"})
    home: str = field(default="", metadata={"help": "chat home folder (default ~/.mmcot/chat)"})
    resume: str = field(default="", metadata={"help": "id (or id prefix) of a session to continue"})
    prompt: str = field(default="", metadata={"help": "answer this once and exit"})
    images: list[str] = field(default_factory=list, metadata={"help": "images for the first message"})
    plain: bool = field(default=False, metadata={"help": "plain text output even on a terminal"})
    show_thoughts: bool = field(default=False, metadata={"help": "show thoughts in full"})
    max_seconds: float = field(default=600.0, metadata={"help": "time budget of one answer"})


def default_model() -> tuple[str, str]:
    """The model to use when none is named: ``smol`` (it holds a conversation) when it is installed, else ``tiny``;
    and a note to show the user when it fell back ("" when not)."""
    from mmcot.reasoning.solve import default_model as solve_default

    if solve_default() == "smol":
        return "smol", ""
    return "tiny", (
        "model smol (the chat model) is not installed in mmcot/models/checkpoints, so this uses tiny, a puzzle model "
        "too small for ordinary conversation; choose another with --model"
    )


def split_images(text: str) -> tuple[str, list[Path]]:
    """Image paths typed or dropped into a message (quoted, backslash-escaped or bare) and the text without them."""
    images: list[Path] = []

    def take(m: re.Match) -> str:
        token = next(g for g in m.groups() if g is not None).replace("\\ ", " ")
        bare = token.rstrip("?!.,;:)")  # "what is in x.png?"
        for candidate, rest in ((token, ""), (bare, token[len(bare) :])):
            path = Path(candidate).expanduser()
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                images.append(path)
                return rest
        return m.group(0)

    rest = PATH_TOKEN.sub(take, text)
    return (" ".join(rest.split()) if images else text.strip()), images


def load_image(path: str | Path) -> Image.Image:
    from mmcot.tools.images import ImageError, open_image

    try:
        return open_image(path)
    except ImageError as e:
        raise ChatError(f"{path}: {e}") from None


class Chat:
    """One chat session: its settings, the model, pending images, and how a turn is run and shown."""

    def __init__(self, store: SessionStore, session: Session, view: RichView | PlainView):
        self.store, self.session, self.view = store, session, view
        self.pending: list[tuple[Path, Image.Image]] = []
        self.tool_state: dict[str, Any] = {}  # per-session tool state: the Python kernel lives across turns
        self.backend = None
        self.last_trace: dict[str, Any] | None = None

    @property
    def settings(self) -> dict[str, Any]:
        return self.session.settings

    def load_model(self, spec: str) -> None:
        from transformers.utils import logging

        from mmcot.models.presets import ModelError
        from mmcot.reasoning.solve import get_backend

        logging.disable_progress_bar()  # the chat shows its own status line
        try:
            if isinstance(self.view, RichView):
                with self.view.console.status(f"loading model {spec}…"):
                    self.backend = get_backend(spec)
            else:
                self.backend = get_backend(spec)
        except (ModelError, ValueError, OSError, ImportError) as e:
            raise ChatError(f"cannot load model {spec!r}: {e}") from None
        self.settings["model"] = spec

    def say(self, text: str, style: str = "") -> None:
        if isinstance(self.view, RichView):
            self.view.console.print(text, style=style, markup=False, highlight=False)
        else:
            print(text, file=self.view.out, flush=True)

    # ---- a turn ----

    def ask(self, text: str | None) -> None:
        """Send ``text`` with the pending images (``None`` continues an unfinished turn) and show the answer."""
        from mmcot.reasoning.solve import solve

        images = [img for _, img in self.pending]
        if text is not None:
            names = []
            for path, img in self.pending:  # a copy in the session folder keeps the transcript whole
                names.append(f"turn{len(self.session.turns)}-{len(names)}-{path.stem}.png")
                img.save(self.session.folder / names[-1])
            self.store.append(self.session, Turn("user", text, images=names))
            self.pending.clear()
        events: queue.Queue = queue.Queue()
        cancel = threading.Event()
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                result["trace"] = solve(
                    images or None,
                    text,
                    strategy=self.settings["strategy"],
                    backend=self.backend,
                    tools=self.settings.get("tools"),
                    budget={"max_seconds": self.settings.get("max_seconds", 600.0)},
                    emit=events.put,
                    cancel=cancel,
                    thread=self.settings["thread"],
                    checkpoint=self.store.home / "threads.sqlite",
                    tool_state=self.tool_state,
                    **self.settings.get("options", {}),
                )
            except Exception as e:  # noqa: BLE001 - shown to the user, the session goes on
                result["error"] = e
            finally:
                events.put(None)

        threading.Thread(target=work, name="mmcot-chat-turn", daemon=True).start()
        while True:
            try:
                event = events.get(timeout=0.1)
                if event is None:
                    break
                if event.get("type") == "answer":
                    result["reply"] = event.get("reply") or ""
                if not cancel.is_set():
                    self.view.event(event)
            except queue.Empty:
                continue
            except KeyboardInterrupt:
                if not cancel.is_set():
                    cancel.set()
                    self.view.cancelled()
        self.view.close()
        self.record(result, cancel.is_set())

    def record(self, result: dict[str, Any], cancelled: bool) -> None:
        if "error" in result:
            e = result["error"]
            self.say(f"error: {e}" if isinstance(e, ValueError) else f"error: {type(e).__name__}: {e}", "red")
            self.store.append(self.session, Turn("assistant", "", status="error"))
            return
        trace = result["trace"]
        self.last_trace = trace.to_dict(image_dir=self.session.folder)
        status = "cancelled" if cancelled or trace.stop_reason == "cancelled" else "ok"
        text = reply_text(result.get("reply", "")) or trace.answer
        self.store.append(self.session, Turn("assistant", text, trace=self.last_trace, status=status))

    # ---- slash commands ----

    def command(self, line: str) -> bool:
        """Run a slash command; False when the chat should end."""
        try:
            name, *args = shlex.split(line)
        except ValueError as e:
            raise ChatError(f"cannot read the command: {e}") from None
        name = {"/exit": "/quit", "/q": "/quit", "/?": "/help"}.get(name, name)
        handler = getattr(self, "cmd_" + name[1:], None) if name in COMMANDS else None
        if handler is None:
            raise ChatError(f"unknown command {name}; /help lists them")
        return handler(args) is not False

    def cmd_help(self, args: list[str]) -> None:
        for name, text in COMMANDS.items():
            self.say(f"{name} {text}")

    def cmd_quit(self, args: list[str]) -> bool:
        return False

    def cmd_image(self, args: list[str]) -> None:
        if not args:
            raise ChatError("usage: /image PATH [PATH ...]")
        for arg in args:
            path = Path(arg).expanduser()
            self.pending.append((path, load_image(path)))
            img = self.pending[-1][1]
            self.say(f"attached {path.name} ({img.width}x{img.height}); it goes with your next message", "cyan")

    def cmd_strategy(self, args: list[str]) -> None:
        from mmcot.reasoning import STRATEGIES, get_strategy, make_config

        if not args:
            for name, strat in STRATEGIES.items():
                mark = "*" if name == self.settings["strategy"] else " "
                self.say(f"{mark} {name:17} {strat.description}")
            options = " ".join(f"{k}={v}" for k, v in self.settings.get("options", {}).items())
            self.say(f"now: {self.settings['strategy']} {options}".rstrip())
            return
        options = dict(parse_option(a) for a in args[1:])
        try:
            strat = get_strategy(args[0])
            make_config(strat, options)
        except ValueError as e:
            raise ChatError(str(e)) from None
        self.settings.update(strategy=args[0], options=options)
        if self.settings.get("tools") is not None and not hasattr(strat.config, "tools"):
            self.settings["tools"] = None
            self.say(f"{args[0]} calls no tools; the tool choice was cleared", "yellow")
        self.store.save_settings(self.session)
        self.say(f"strategy: {args[0]} {' '.join(args[1:])}".rstrip(), "cyan")

    def cmd_tools(self, args: list[str]) -> None:
        from mmcot.reasoning import get_strategy, make_config
        from mmcot.tools import TOOLS

        strat = get_strategy(self.settings["strategy"])
        if not args:
            own = getattr(make_config(strat, self.settings.get("options", {})), "tools", None)
            active = self.settings.get("tools") if self.settings.get("tools") is not None else own
            active = {t.strip() for t in (active or "").split(",") if t.strip()}
            for name, tool in TOOLS.items():
                self.say(f"{'*' if name in active else ' '} {name:10} {tool.description.splitlines()[0]}")
            if own is None:
                self.say(f"(strategy {strat.name} calls no tools; image-loop and react do)")
            return
        if not hasattr(strat.config, "tools"):
            raise ChatError(f"strategy {strat.name} calls no tools; switch with /strategy image-loop or react")
        value = None if args[0] == "default" else ",".join(args)
        names = [t.strip() for t in (value or "").split(",") if t.strip()]
        unknown = [n for n in names if n not in TOOLS and ":" not in n]
        if unknown:
            raise ChatError(f"unknown tool(s) {', '.join(unknown)}; known: {', '.join(TOOLS)}")
        self.settings["tools"] = value
        self.store.save_settings(self.session)
        self.say(f"tools: {value if value is not None else 'the strategy default'}", "cyan")

    def cmd_model(self, args: list[str]) -> None:
        if not args:
            self.say(f"model: {self.settings['model']}")
            return
        self.load_model(args[0])
        self.store.save_settings(self.session)
        self.say(f"model: {args[0]}", "cyan")

    def cmd_thoughts(self, args: list[str]) -> None:
        if isinstance(self.view, RichView):
            self.view.show_thoughts = not self.view.show_thoughts
            self.say(f"thoughts: {'shown in full' if self.view.show_thoughts else 'collapsed'}", "cyan")

    def cmd_trace(self, args: list[str]) -> None:
        trace = self.last_trace or next((t.trace for t in reversed(self.session.turns) if t.trace), None)
        if trace is None:
            raise ChatError("no answer yet in this session")
        self.say(
            f"strategy {trace['strategy']} · stop: {trace['stop_reason']} · {trace['model_calls']} model calls · "
            f"{trace['completion_tokens']} tokens · {trace['tool_calls']} tool calls · {trace['seconds']:.1f}s"
        )
        for node in trace["nodes"]:
            head = f"#{node['id']} {node['kind']}" + (f" ← {node['parents']}" if node["parents"] else "")
            if node.get("score") is not None:
                head += f" score={node['score']:.3g}"
            self.say(head, "bold")
            if node.get("tool_call") and node["kind"] == "tool_call":
                self.say("  " + describe_call(node["tool_call"]), "cyan")
            if node.get("text"):
                self.say("  " + node["text"].strip().replace("\n", "\n  "), "dim")
            for image_id in node.get("images", []):
                self.say(f"  {image_id}: {self.session.folder / trace['images'].get(image_id, image_id + '.png')}")
        self.say(f"answer: {trace['answer']}", "bold")

    def cmd_save(self, args: list[str]) -> None:
        path = Path(args[0]).expanduser() if args else self.session.folder / "transcript.md"
        lines = [f"# mmcot chat {self.session.id}", ""]
        for turn in self.session.turns:
            lines.append(f"**{turn.role}**{'' if turn.status == 'ok' else f' ({turn.status})'}: {turn.text}")
            lines += [f"![{name}]({self.session.folder / name})" for name in turn.images]
            trace = turn.trace or {"nodes": [], "images": {}}
            made = [i for node in trace["nodes"] for i in node.get("images", [])]  # images this turn made
            lines += [f"![{i}]({self.session.folder / trace['images'][i]})" for i in made if i in trace["images"]]
            lines.append("")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines))
        except OSError as e:
            raise ChatError(f"cannot write {path}: {e.strerror or e}") from None
        self.say(f"saved {path}", "cyan")

    def cmd_reset(self, args: list[str]) -> None:
        keep = {k: self.settings[k] for k in ("model", "strategy", "options", "tools", "max_seconds")}
        self.session = self.store.create(keep)
        self.session.settings["thread"] = self.session.id
        self.store.save_settings(self.session)
        self.view.folder = self.session.folder
        self.pending.clear()
        self.last_trace = None
        self.say(f"new session {self.session.id}", "cyan")

    # ---- the loop ----

    def handle(self, line: str) -> bool:
        """One line of input: a command or a message. False when the chat should end."""
        try:
            if line.startswith("/") and not Path(line.split()[0]).exists():
                return self.command(line)
            text, paths = split_images(line)
            for path in paths:
                self.pending.append((path, load_image(path)))
                self.say(f"attached {path.name}", "cyan")
            if text:
                self.ask(text)
            elif paths:
                self.say("now ask something about it", "cyan")
        except ChatError as e:
            self.say(f"error: {e}", "red")
        return True

    def banner(self) -> None:
        s = self.settings
        self.say(f"mmcot chat · model {s['model']} · strategy {s['strategy']} · session {self.session.id}", "bold")
        self.say(f"session folder: {self.session.folder} · /help for commands · Ctrl-C cancels an answer", "dim")
        for turn in self.session.turns:
            images = f" [{', '.join(turn.images)}]" if turn.images else ""
            mark = "" if turn.status == "ok" else f" ({turn.status})"
            self.say(
                f"{'you' if turn.role == 'user' else 'mmcot'}{mark}: {turn.text}{images}",
                "" if turn.role == "user" else "green",
            )

    def close(self) -> None:
        from mmcot.tools.base import ToolContext

        ToolContext(state=self.tool_state).close()


def parse_option(text: str) -> tuple[str, Any]:
    import json

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ChatError(f"{text!r}: expected KEY=VALUE")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def open_chat(cfg: ChatConfig) -> Chat:
    """The session (new or resumed), its view and its model."""
    plain = cfg.plain or not (sys.stdout.isatty() and (cfg.prompt or sys.stdin.isatty()))
    store = SessionStore(cfg.home or None)
    if cfg.resume:
        try:
            session = store.load(cfg.resume)
        except KeyError as e:
            raise ChatError(e.args[0]) from None
    else:
        model, note = (cfg.model, "") if cfg.model else default_model()
        if note:
            print(f"note: {note}", file=sys.stderr, flush=True)
        settings = {
            "model": model,
            "strategy": cfg.strategy,
            "options": cfg.options,
            "tools": cfg.tools,
            "max_seconds": cfg.max_seconds,
        }
        session = store.create(settings)
        session.settings["thread"] = session.id
    view = make_view(session.folder, plain, cfg.show_thoughts, answer_only=bool(cfg.prompt))
    chat = Chat(store, session, view)
    if not cfg.resume:
        from mmcot.reasoning import get_strategy, make_config

        try:
            make_config(get_strategy(cfg.strategy), cfg.options)
        except ValueError as e:
            raise ChatError(str(e)) from None
        store.save_settings(session)
    chat.load_model(session.settings["model"])
    for path in cfg.images:
        chat.pending.append((Path(path), load_image(path)))
    return chat


def main(cfg: ChatConfig) -> None:
    """Run the chat (or answer ``cfg.prompt`` once). Raises ChatError for what the user must fix."""
    chat = open_chat(cfg)
    try:
        if cfg.prompt:
            chat.ask(cfg.prompt)
            return
        chat.banner()
        if chat.session.turns and chat.session.turns[-1].role == "user":
            chat.say("continuing the answer that was cut short", "yellow")
            chat.ask(None)
        if isinstance(chat.view, PlainView):
            for line in sys.stdin:
                if line.strip() and not chat.handle(line.strip()):
                    break
            return
        prompt = make_prompt(chat.store.home)
        while True:
            try:
                line = prompt.prompt(prompt_label(chat))
            except KeyboardInterrupt:
                continue  # Ctrl-C at the prompt clears the line
            except EOFError:
                break
            if line.strip() and not chat.handle(line.strip()):
                break
    finally:
        chat.close()


def prompt_label(chat: Chat) -> Any:
    from prompt_toolkit.formatted_text import HTML

    attached = f" [+{len(chat.pending)} image{'s' if len(chat.pending) > 1 else ''}]" if chat.pending else ""
    return HTML(f"<b><ansigreen>you</ansigreen></b>{attached}&gt; ")


def make_prompt(home: Path) -> Any:
    """A prompt_toolkit session: history in the chat home, completion of commands and paths, multi-line input."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import NestedCompleter, PathCompleter
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.key_binding import KeyBindings

    from mmcot.reasoning import STRATEGIES

    keys = KeyBindings()

    @keys.add("escape", "enter")
    @keys.add("c-j")
    def _newline(event: Any) -> None:
        event.current_buffer.insert_text("\n")

    @keys.add("enter")
    def _enter(event: Any) -> None:
        buffer = event.current_buffer
        if buffer.text.endswith("\\"):
            buffer.delete_before_cursor(1)
            buffer.insert_text("\n")
        else:
            buffer.validate_and_handle()

    nested: dict[str, Any] = {name: None for name in COMMANDS}
    nested["/image"] = PathCompleter(expanduser=True)
    nested["/strategy"] = {name: None for name in STRATEGIES}
    return PromptSession(
        history=FileHistory(str(home / "history")),
        completer=NestedCompleter.from_nested_dict(nested),
        key_bindings=keys,
        multiline=True,  # Enter is bound above to send; the binding keeps pasted newlines in the message
        prompt_continuation="  … ",
    )


def list_sessions(home: str = "") -> list[dict[str, Any]]:
    return SessionStore(home or None).list()
