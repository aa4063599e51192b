"""Echelon's HTTP server and web demo (``echelon-serve``): any registered pipeline (TTS, VC, SR) behind an
OpenAI-shaped speech API and a Gradio page, on FastAPI + uvicorn. It sits above ``models/`` like
``evaluation/``: it reaches the models only through ``models.base`` (pipelines, task API, streaming).

* ``config.py``  — ``serve.json5`` schema (models by name, limits), validated like every Echelon config;
* ``models.py``  — the loaded pipelines by name and what ``GET /v1/models`` says about them;
* ``workers.py`` — one bounded pool per model (several steps at once where the pipeline allows), the queue (429),
  timeouts, draining on SIGTERM (503);
* ``audio.py``   — upload decoding (in memory, limited) and response encoding (wav, flac, pcm, mp3, ...);
* ``errors.py``  — every error as ``{"error": {"message", "type", "param"}}`` with its status;
* ``speech.py``  — the request schemas and the task calls behind each endpoint;
* ``app.py``     — the FastAPI app: routes, API key, the Gradio demo mounted at ``/ui``;
* ``ui.py``      — the Gradio demo (TTS / VC / SR tabs);
* ``gradio_env.py`` — the environment Gradio needs set before it loads (offline, no analytics).

See ``serving/README.md`` for the API, the limits and their defaults, and measured figures.
"""
