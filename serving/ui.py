"""The web demo (Gradio, mounted at ``/ui``): text to speech, voice conversion and super-resolution tabs.

Each tab shows the settings of the chosen model only: VITS-like models their length/noise scales and speaker,
HierSpeech++ its ``noise_scale_ttv``/``noise_scale_vc``, output rate 16/24/48 kHz and ``denoise_ratio``
(disabled, with the reason, when no denoiser is installed). Every call goes through the same worker queue as
the API (429 when it is full). Offline: the theme uses system fonts (Gradio's default theme loads Google
Fonts), analytics are off and nothing is shared.
"""

from __future__ import annotations

import hmac
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from models.base.tasks import Audio
from serving.app import quiet_gradio
from serving.errors import ApiError
from serving.speech import Service

# (setting, label, minimum, maximum, step) of the sliders, shown for models whose settings have them
SLIDERS = [("noise_scale", "noise scale", 0.0, 2.0, 0.01), ("noise_scale_w", "duration noise scale", 0.0, 2.0, 0.01),
           ("length_scale", "length scale (> 1 slower)", 0.5, 2.0, 0.01),
           ("noise_scale_ttv", "noise_scale_ttv", 0.0, 1.5, 0.01), ("noise_scale_vc", "noise_scale_vc", 0.0, 1.5, 0.01),
           ("denoise_ratio", "denoise ratio", 0.0, 1.0, 0.05)]
OUTPUT_RATES = [16000, 24000, 48000]
PLAYER = {"show_recording_waveform": False}  # the browser's own <audio> player (holds the result's URL)
NO_DENOISER = "disabled: no denoiser is installed (Echelon ships none), so the prompt is used as it is"


def to_audio(value: Optional[Tuple[int, np.ndarray]], service: Service, what: str) -> Optional[Audio]:
    """Gradio's ``(rate, samples)`` (int16 or float, mono or (T, C)) -> mono float :class:`Audio`."""
    if value is None:
        return None
    rate, data = value
    data = np.asarray(data)
    if data.size == 0:
        raise ApiError(400, f"{what}: the recording is empty")
    wav = data.astype(np.float32) / 32768.0 if np.issubdtype(data.dtype, np.integer) else data.astype(np.float32)
    wav = wav.mean(axis=1) if wav.ndim == 2 else wav
    if wav.shape[0] / rate > service.limits.max_upload_seconds:
        raise ApiError(413, f"{what}: over the limit of {service.limits.max_upload_seconds:g} s")
    return Audio(wav, int(rate))


def as_output(audio: Audio) -> Tuple[int, np.ndarray]:
    return audio.sample_rate, (np.clip(audio.waveform, -1.0, 1.0) * 32767).astype(np.int16)


def control_settings(service: Service, name: Optional[str]) -> List[Dict[str, Any]]:
    """Constructor/update keywords of (speaker, prompt, sliders..., output rate) for model ``name``."""
    if not name:
        return [{"visible": False}] * (3 + len(SLIDERS))
    model = service.registry.models[name]
    settings, allowed, caps = model.settings(), model.request_settings(), model.pipeline.capabilities
    speakers = list(caps.speakers)
    out: List[Dict[str, Any]] = [
        {"choices": speakers, "value": speakers[0] if speakers else None, "visible": bool(speakers)},
        {"visible": bool(caps.audio_prompt)}]
    has_denoiser = model.describe()["denoiser"]
    for key, *_ in SLIDERS:
        if key not in allowed:
            out.append({"visible": False})
        elif key == "denoise_ratio" and not has_denoiser:
            out.append({"visible": True, "interactive": False, "value": 0.0, "info": NO_DENOISER})
        else:
            out.append({"visible": True, "interactive": True, "value": settings[key]})
    rate = settings.get("output_rate")
    out.append({"visible": "output_rate" in allowed, "value": rate if rate in OUTPUT_RATES else None})
    return out


def build_ui(service: Service) -> Any:
    import gradio as gr

    registry = service.registry

    async def run(model_name: str, task: str, changes: Dict[str, Any], call: Any) -> Tuple[Any, str]:
        try:
            model = registry.get(model_name, task)
            pipeline = model.variant({k: v for k, v in changes.items() if k in model.request_settings()})
            audio = await service.run(lambda: call(model, pipeline), None)
        except ApiError as err:
            raise gr.Error(err.message) from err
        return as_output(audio), f"{audio.seconds:.2f} s at {audio.sample_rate} Hz"

    async def tts(name: str, text: str, speaker: Any, prompt: Any, *values: Any) -> Tuple[Any, str]:
        *scales, rate, seed = values
        try:
            text = service.text(text or "")
            model = registry.get(name, "tts")
            spk = service.speaker(model, speaker)
            voice = to_audio(prompt, service, "voice prompt")
            if model.pipeline.capabilities.audio_prompt and voice is None:
                raise ApiError(422, "this model is zero-shot: upload or record a voice prompt first")
        except ApiError as err:
            raise gr.Error(err.message) from err
        changes = {key: value for (key, *_), value in zip(SLIDERS, scales)}
        changes["output_rate"] = rate
        return await run(name, "tts", changes, lambda m, p: p.synthesize(
            [text], None if voice is None else [voice], None, None if spk is None else [spk], int(seed))[0])

    async def vc(name: str, source: Any, prompt: Any, noise_scale_vc: float, denoise: float, seed: float):
        try:
            src, voice = to_audio(source, service, "source"), to_audio(prompt, service, "voice prompt")
            if src is None or voice is None:
                raise ApiError(400, "give both the source speech and the voice prompt")
        except ApiError as err:
            raise gr.Error(err.message) from err
        # HierSpeech++'s own demo calls the synthesizer's prior temperature noise_scale_vc (the slider's label);
        # the VC pipelines' setting for it is noise_scale
        return await run(name, "vc", {"noise_scale": noise_scale_vc, "denoise_ratio": denoise},
                         lambda m, p: p.convert([src], [voice], int(seed))[0])

    async def sr(name: str, audio: Any, rate: int) -> Tuple[Any, str]:
        try:
            wav = to_audio(audio, service, "audio")
            if wav is None:
                raise ApiError(400, "upload or record the audio to upsample")
        except ApiError as err:
            raise gr.Error(err.message) from err
        return await run(name, "sr", {"target_rate": rate}, lambda m, p: p.upsample([wav])[0])

    with gr.Blocks(title="Echelon speech demo", analytics_enabled=False) as demo:
        gr.Markdown("## Echelon speech demo\nModels served here: " + ", ".join(
            f"`{n}` ({m.task}, {m.pipeline.sample_rate} Hz)" for n, m in registry.models.items()))
        with gr.Tabs():
            with gr.Tab("Text to speech", visible=bool(registry.names("tts"))):
                names = registry.names("tts")
                model = gr.Dropdown(names, value=names[0] if names else None, label="model", elem_id="tts-model")
                text = gr.Textbox(label="text", lines=3, elem_id="tts-text",
                                  placeholder="Type a sentence; long texts are spoken sentence by sentence.")
                first = control_settings(service, names[0] if names else None)
                speaker = gr.Dropdown(label="speaker", elem_id="tts-speaker", **first[0])
                prompt = gr.Audio(sources=["upload", "microphone"], type="numpy", label="voice prompt (zero-shot)",
                                  **first[1])
                with gr.Row():
                    sliders = [gr.Slider(lo, hi, step=step, label=label, elem_id=f"tts-{key}", **kw)
                               for (key, label, lo, hi, step), kw in zip(SLIDERS, first[2:-1])]
                with gr.Row():
                    rate = gr.Radio(OUTPUT_RATES, label="output rate (Hz)", **first[-1])
                    seed = gr.Number(1234, precision=0, label="seed", minimum=0)
                go = gr.Button("Generate", variant="primary", elem_id="tts-generate")
                out = gr.Audio(label="speech", type="numpy", interactive=False, buttons=["download"],
                               waveform_options=PLAYER,
                               elem_id="tts-output")
                info = gr.Markdown(elem_id="tts-info")
                controls = [speaker, prompt, *sliders, rate]
                model.change(lambda n: [gr.update(**kw) for kw in control_settings(service, n)], model, controls)
                go.click(tts, [model, text, speaker, prompt, *sliders, rate, seed], [out, info])
            with gr.Tab("Voice conversion", visible=bool(registry.names("vc"))):
                names = registry.names("vc")
                vc_model = gr.Dropdown(names, value=names[0] if names else None, label="model")
                source = gr.Audio(sources=["upload", "microphone"], type="numpy", label="source speech",
                                  elem_id="vc-source")
                vc_prompt = gr.Audio(sources=["upload", "microphone"], type="numpy", label="voice prompt",
                                     elem_id="vc-prompt")
                vc_scale = gr.Slider(0.0, 1.5, value=0.333, step=0.01, label="noise_scale_vc")
                vc_denoise = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="denoise ratio", interactive=False,
                                       info=NO_DENOISER)
                vc_seed = gr.Number(1234, precision=0, label="seed", minimum=0)
                vc_go = gr.Button("Convert", variant="primary", elem_id="vc-convert")
                vc_out = gr.Audio(label="converted", type="numpy", interactive=False, buttons=["download"],
                                  waveform_options=PLAYER, elem_id="vc-output")
                vc_info = gr.Markdown()
                vc_go.click(vc, [vc_model, source, vc_prompt, vc_scale, vc_denoise, vc_seed], [vc_out, vc_info])
            with gr.Tab("Super-resolution", visible=bool(registry.names("sr"))):
                names = registry.names("sr")
                sr_model = gr.Dropdown(names, value=names[0] if names else None, label="model")
                sr_in = gr.Audio(sources=["upload", "microphone"], type="numpy", label="speech (any rate)",
                                 elem_id="sr-input")
                sr_rate = gr.Radio([24000, 48000], value=48000, label="target rate (Hz)", elem_id="sr-rate")
                sr_go = gr.Button("Upsample", variant="primary", elem_id="sr-upsample")
                sr_out = gr.Audio(label="upsampled", type="numpy", interactive=False, buttons=["download"],
                                  waveform_options=PLAYER, elem_id="sr-output")
                sr_info = gr.Markdown()
                sr_go.click(sr, [sr_model, sr_in, sr_rate], [sr_out, sr_info])
    return demo


def mount_ui(app: Any, service: Service, api_key: str = "") -> None:
    """Mount the demo at ``/ui``; with an API key, Gradio's login asks for it (any user name)."""
    quiet_gradio()
    import gradio as gr

    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    auth = (lambda _user, password: hmac.compare_digest(password.encode(), api_key.encode())) if api_key else None
    gr.mount_gradio_app(app, build_ui(service), path="/ui", theme=theme, auth=auth, footer_links=[],
                        ssr_mode=False, pwa=False, mcp_server=False, enable_monitoring=False)
