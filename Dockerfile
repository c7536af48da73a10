# Hugging Face Space image (Docker SDK): the Streamlit dashboard on port 8501 with the committed runs.
# Local try-out: docker build -t gan-vae . && docker run --rm -p 8501:8501 gan-vae
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

# CPU-only torch first: PyPI's build pulls in ~3 GB of CUDA libraries a CPU Space never uses. The +cpu
# wheels satisfy requirements.txt's torch==2.14.1 / torchvision==0.29.1 pins, so pip keeps them.
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1
COPY requirements.txt /tmp/requirements.txt
# Spaces run the container as user 1000: it owns the app folder (pulled runs land in checkpoints/).
RUN pip install --no-cache-dir -r /tmp/requirements.txt \
    && useradd --create-home --uid 1000 user \
    && install -d -o 1000 -g 1000 /home/user/app
USER 1000
ENV HOME=/home/user
# MNIST and Fashion-MNIST are downloaded while the image is built (Spaces' builders have internet; a running
# Space may not), so the Retrain page works after every restart. PERSISTENT_DIR: where a Space's persistent
# storage is mounted when it has some; retrained runs and the job queue then go to /data/runs
# (core.paths.runs_dir), else to runs/ in the container, which a restart empties.
ENV DATA_DIR=/home/user/data \
    PERSISTENT_DIR=/data
RUN python -c "import torchvision.datasets as d; [c('/home/user/data', train=t, download=True) for c in (d.MNIST, d.FashionMNIST) for t in (True, False)]" \
    && find /home/user/data -name '*.gz' -delete \
    && python -c "import sys, pathlib; n = len(list(pathlib.Path('/home/user/data').glob('*/raw/*-ubyte'))); sys.exit(n != 8)"
WORKDIR /home/user/app
COPY --chown=1000:1000 . .
# `core` and `dashboard` as an installed (editable) package: streamlit puts only dashboard/ on the path
USER 0
RUN pip install --no-cache-dir --no-deps -e .
USER 1000

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:8501/_stcore/health', timeout=4)"]
CMD ["streamlit", "run", "dashboard/app.py", "--server.port=8501", "--server.address=0.0.0.0"]
