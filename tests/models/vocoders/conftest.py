from tests.models.vits.conftest import single_torch_thread  # noqa: F401  (autouse: one intra-op thread)
