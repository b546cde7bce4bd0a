from tests.answers.conftest import answer_settings, lumen_kb  # noqa: F401  (the demo help centre)
