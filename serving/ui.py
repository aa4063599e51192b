"""The web demo (Gradio, mounted at ``/ui``): text to speech, voice conversion and super-resolution tabs.

Each tab's setting controls are built from the shared settings vocabulary (``models/base/infer_settings.json5``:
label, slider range, choices) for the request settings its served models have, and show only those of the
chosen model; a setting that needs a part the model lacks (a prompt denoiser) is shown disabled with the reason.
Every call goes through the same worker queue as the API (429 when it is full). A user's error (empty text, a
character the voice cannot speak, a bad recording) is shown on the page and logged as one line. Offline: the
theme uses system fonts (Gradio's default theme loads Google Fonts), analytics are off and nothing is shared.
"""

from __future__ import annotations

import hmac
import logging
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from models.base.infer_settings import Setting, by_role, vocabulary
from models.base.tasks import Audio
from serving.audio import decode_upload
from serving.errors import ApiError
from serving.gradio_env import quiet_gradio
from serving.speech import Service

log = logging.getLogger("echelon.serve")
PLAYER = {"show_recording_waveform": False}  # the browser's own <audio> player (holds the result's URL)
DEFAULT_SEED = 1234
LOGIN_MESSAGE = "This server asks for its API key: type any user name, and the API key as the password."


def to_audio(path: Optional[str], service: Service, what: str) -> Optional[Audio]:
    """An uploaded or recorded file (Gradio hands over its path) -> mono :class:`Audio`, decoded as the API decodes
    uploads: in memory by libsndfile, within the same limits, an unreadable file named in a one-line error."""
    if not path:
        return None
    limit = service.limits.max_upload_bytes
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    return decode_upload(data, limit, service.limits.max_upload_seconds, what, Path(path).name)


def as_output(audio: Audio) -> Tuple[int, np.ndarray]:
    return audio.sample_rate, (np.clip(audio.waveform, -1.0, 1.0) * 32767).astype(np.int16)


def user_error(err: ApiError) -> Exception:
    """What the page shows for a user's error: one log line, no traceback (Gradio prints one per error unless
    told not to)."""
    import gradio as gr

    log.info("demo request refused (%d): %s", err.status, err.message)
    return gr.Error(err.message, print_exception=False)


# ---------------------------------------------------------------------- controls from the vocabulary
def has_control(setting: Setting) -> bool:
    return bool(setting.control or setting.choices or setting.type == "bool") and setting.role != "seed"


def task_settings(service: Service, task: str) -> List[Setting]:
    """The vocabulary settings with a control that some served model of ``task`` takes, in vocabulary order."""
    taken = {key for name in service.registry.names(task) for key in service.registry.models[name].request_settings()}
    return [s for s in vocabulary().values() if s.name in taken and s.request and has_control(s)]


def make_control(setting: Setting, elem_id: str, settings: Dict[str, Any]) -> Any:
    import gradio as gr

    kw = {"label": setting.label, "info": setting.meaning, "elem_id": elem_id, **settings}
    if setting.choices:
        return gr.Radio(list(setting.choices), **kw)
    if setting.type == "bool":
        return gr.Checkbox(**kw)
    lo, hi, step = setting.control
    return gr.Slider(lo, hi, step=step, **kw)


def control_settings(service: Service, name: Optional[str], settings: Sequence[Setting]) -> List[Dict[str, Any]]:
    """Constructor/update keywords of each of ``settings``' controls for model ``name``."""
    if not name:
        return [{"visible": False} for _ in settings]
    model = service.registry.models[name]
    values, allowed = model.settings(), model.request_settings()
    out: List[Dict[str, Any]] = []
    for setting in settings:
        value = values.get(setting.name)
        if setting.choices and value not in setting.choices:
            value = None  # the model's own default (e.g. its checkpoint's rate)
        if setting.name not in allowed:
            out.append({"visible": False})
        elif setting.needs and not model.has(setting.needs):
            out.append({"visible": True, "interactive": False, "value": setting.minimum or 0,
                        "info": setting.unavailable or f"disabled: model {name!r} has no {setting.needs}"})
        else:
            out.append({"visible": True, "interactive": True, "value": value, "info": setting.meaning})
    return out


def voice_controls(service: Service, name: Optional[str]) -> List[Dict[str, Any]]:
    """Keywords of the speaker list and the voice prompt for TTS model ``name``."""
    if not name:
        return [{"visible": False}, {"visible": False}]
    caps = service.registry.models[name].pipeline.capabilities
    speakers = list(caps.speakers)
    return [{"choices": speakers, "value": speakers[0] if speakers else None, "visible": bool(speakers)},
            {"visible": bool(caps.audio_prompt)}]


def drop_remedy(settings: Sequence[Setting]) -> str:
    """How a demo user leaves out characters the voice cannot speak: the control's label, if the tab has it."""
    drop = by_role("leave_out_unspeakable")
    return f'tick "{drop.label}"' if drop in settings else "edit the text"


class Handlers:
    """What the demo's buttons do: the same checks, queue and settings as the API's endpoints; a user's error
    becomes the page's message (:func:`user_error`)."""

    def __init__(self, service: Service):
        self.service, self.registry = service, service.registry
        self.settings = {task: task_settings(service, task) for task in ("tts", "vc", "sr", "process")}

    async def run(self, name: str, task: str, values: Sequence[Any], call: Callable[[Any], Audio]) -> Tuple[Any, str]:
        settings = self.settings[task]
        try:
            model = self.registry.get(name, task)
            changes = {s.name: v for s, v in zip(settings, values) if s.name in model.request_settings()}
            pipeline = model.variant(changes)
            audio = await self.service.run(model.name, lambda: call(pipeline), None, drop_remedy(settings))
        except ApiError as err:
            raise user_error(err) from None
        return as_output(audio), f"{audio.seconds:.2f} s at {audio.sample_rate} Hz"

    def seed(self, value: Optional[float]) -> Optional[int]:
        return self.service.seed(DEFAULT_SEED if value is None else int(value))

    async def tts(self, name: str, text: str, speaker: Any, prompt: Any, seed: float, *values: Any) -> Tuple[Any, str]:
        try:
            text = self.service.text(text or "", "the text")
            model = self.registry.get(name, "tts")
            spk, voice = model.speaker(speaker), to_audio(prompt, self.service, "voice prompt")
            if model.pipeline.capabilities.audio_prompt and voice is None:
                raise ApiError(422, "this model is zero-shot: upload or record a voice prompt first")
            chosen = self.seed(seed)
        except ApiError as err:
            raise user_error(err) from None
        return await self.run(name, "tts", values, lambda p: p.synthesize(
            [text], None if voice is None else [voice], None, None if spk is None else [spk], chosen)[0])

    async def vc(self, name: str, source: Any, prompt: Any, seed: float, *values: Any) -> Tuple[Any, str]:
        try:
            src, voice = to_audio(source, self.service, "source"), to_audio(prompt, self.service, "voice prompt")
            if src is None or voice is None:
                raise ApiError(400, "give both the source speech and the voice prompt")
            chosen = self.seed(seed)
        except ApiError as err:
            raise user_error(err) from None
        return await self.run(name, "vc", values, lambda p: p.convert([src], [voice], chosen)[0])

    def one_recording(self, audio: Any, action: str) -> Audio:
        """The tab's one recording, or the page's message saying what is missing or wrong with it."""
        try:
            wav = to_audio(audio, self.service, "audio")
            if wav is None:
                raise ApiError(400, f"upload or record the audio to {action}")
        except ApiError as err:
            raise user_error(err) from None
        return wav

    async def sr(self, name: str, audio: Any, *values: Any) -> Tuple[Any, str]:
        wav = self.one_recording(audio, "upsample")
        return await self.run(name, "sr", values, lambda p: p.upsample([wav])[0])

    async def process(self, name: str, audio: Any) -> Tuple[Any, str]:
        wav = self.one_recording(audio, "process")
        return await self.run(name, "process", (), lambda p: p.process_audio(wav))


class TabParts:
    """The pieces every tab has, built for one task: its model list, setting controls and output."""

    def __init__(self, service: Service, task: str, settings: Sequence[Setting]):
        import gradio as gr

        self.service, self.task, self.settings = service, task, settings
        names = service.registry.names(task)
        self.first = names[0] if names else None
        self.model = gr.Dropdown(names, value=self.first, label="model", elem_id=f"{task}-model")

    def controls(self) -> List[Any]:
        import gradio as gr

        with gr.Row():
            self.built = [make_control(s, f"{self.task}-{s.name}", kw)
                          for s, kw in zip(self.settings, control_settings(self.service, self.first, self.settings))]
        return self.built

    def follow_model(self, before: Sequence[Any] = (), voices: bool = False) -> None:
        """Show the chosen model's controls (and, for TTS, its speakers and prompt) when the model changes."""
        import gradio as gr

        def updates(name: Optional[str]) -> List[Any]:
            kws = (voice_controls(self.service, name) if voices else []) + control_settings(
                self.service, name, self.settings)
            return [gr.update(**kw) for kw in kws]

        self.model.change(updates, self.model, [*before, *self.built])

    def output(self, label: str) -> List[Any]:
        import gradio as gr

        player = gr.Audio(label=label, type="numpy", interactive=False, buttons=["download"],
                          waveform_options=PLAYER, elem_id=f"{self.task}-output")
        return [player, gr.Markdown(elem_id=f"{self.task}-info")]


def recording(label: str, elem_id: str, **kw: Any) -> Any:
    import gradio as gr

    return gr.Audio(sources=["upload", "microphone"], type="filepath", label=label, elem_id=elem_id, **kw)


def seed_box(task: str) -> Any:
    import gradio as gr

    return gr.Number(DEFAULT_SEED, precision=0, label="seed", minimum=0, elem_id=f"{task}-seed")


def build_ui(service: Service) -> Any:
    import gradio as gr

    registry, handlers = service.registry, Handlers(service)
    with gr.Blocks(title="Echelon speech demo", analytics_enabled=False) as demo:
        gr.Markdown("## Echelon speech demo\nModels served here: " + ", ".join(
            f"`{n}` ({m.task}, {m.pipeline.sample_rate} Hz)" for n, m in registry.models.items()))
        with gr.Tabs():
            with gr.Tab("Text to speech", visible=bool(registry.names("tts"))):
                tab = TabParts(service, "tts", handlers.settings["tts"])
                text = gr.Textbox(label="text", lines=3, elem_id="tts-text",
                                  placeholder="Type a sentence; long texts are spoken sentence by sentence.")
                speaker_kw, prompt_kw = voice_controls(service, tab.first)
                voice = [gr.Dropdown(label="speaker", elem_id="tts-speaker", **speaker_kw),
                         recording("voice prompt (zero-shot)", "tts-prompt", **prompt_kw)]
                controls, seed = tab.controls(), seed_box("tts")
                go = gr.Button("Generate", variant="primary", elem_id="tts-generate")
                tab.follow_model(voice, voices=True)
                go.click(handlers.tts, [tab.model, text, *voice, seed, *controls], tab.output("speech"))
            with gr.Tab("Voice conversion", visible=bool(registry.names("vc"))):
                tab = TabParts(service, "vc", handlers.settings["vc"])
                sources = [recording("source speech", "vc-source"), recording("voice prompt", "vc-prompt")]
                controls, seed = tab.controls(), seed_box("vc")
                go = gr.Button("Convert", variant="primary", elem_id="vc-convert")
                tab.follow_model()
                go.click(handlers.vc, [tab.model, *sources, seed, *controls], tab.output("converted"))
            with gr.Tab("Super-resolution", visible=bool(registry.names("sr"))):
                tab = TabParts(service, "sr", handlers.settings["sr"])
                source, controls = recording("speech (any rate)", "sr-input"), tab.controls()
                go = gr.Button("Upsample", variant="primary", elem_id="sr-upsample")
                tab.follow_model()
                go.click(handlers.sr, [tab.model, source, *controls], tab.output("upsampled"))
            with gr.Tab("Copy synthesis", visible=bool(registry.names("process"))):  # models with a runner only
                tab = TabParts(service, "process", ())
                source = recording("speech", "process-input")
                go = gr.Button("Process", variant="primary", elem_id="process-run")
                go.click(handlers.process, [tab.model, source], tab.output("output"))
    return demo


def mount_ui(app: Any, service: Service, api_key: str = "") -> None:
    """Mount the demo at ``/ui``; with an API key, Gradio's login page asks for it as the password (any user
    name) and says so."""
    quiet_gradio()
    import gradio as gr

    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    auth = (lambda _user, password: hmac.compare_digest(password.encode(), api_key.encode())) if api_key else None
    gr.mount_gradio_app(app, build_ui(service), path="/ui", theme=theme, auth=auth,
                        auth_message=LOGIN_MESSAGE if api_key else None, footer_links=[],
                        ssr_mode=False, pwa=False, mcp_server=False, enable_monitoring=False)
