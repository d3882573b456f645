# The opsdeck image docker-compose.yml builds: one distribution, the `opsdeck` command.
FROM python:3.11-slim
WORKDIR /opt/opsdeck
COPY . .
RUN pip install --no-cache-dir -e . && useradd --system opsdeck
USER opsdeck
CMD ["opsdeck", "--help"]
