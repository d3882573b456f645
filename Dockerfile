# The opsdeck image docker-compose.yml builds: the `opsdeck` command installed from its
# wheel, exactly as a user installs a release, so what runs here is what the wheel carries
# (templates, static files, runbooks, rules, dashboards), never a source checkout.
# `--build-arg EXTRAS=demo` adds the simulator's libraries (numpy, pyarrow).
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# A fixed uid/gid: docker-compose.yml gives the secrets to it (x-opsdeck-secret).
RUN groupadd --system --gid 10001 opsdeck \
    && useradd --system --uid 10001 --gid opsdeck --home-dir /var/lib/opsdeck \
       --create-home --shell /usr/sbin/nologin opsdeck \
    && install -d -o opsdeck -g opsdeck /var/lib/opsdeck/provisioned/dashboards \
       /var/lib/opsdeck/provisioned/rules
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-cache-dir "$(ls /tmp/wheels/opsdeck-*.whl)${EXTRAS:+[$EXTRAS]}" \
    && rm -rf /tmp/wheels
WORKDIR /var/lib/opsdeck
USER opsdeck:opsdeck
CMD ["opsdeck", "--help"]
