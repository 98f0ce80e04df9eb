# Gatehouse: the compiled binary on a slim Debian, running as an unprivileged user.
#
#   docker build -t gatehouse .
#   docker run -d --name gatehouse --init -p 8740:8740 \
#     -v "$PWD/config:/config:ro" -v gatehouse-data:/data gatehouse
#
# /config holds registry.yaml and its policies/ directory; /data holds the SQLite store, keys and secrets/.
# The container listens on 0.0.0.0, which is not loopback, so the registry needs `auth: oauth`.
#
# examples/docker runs it with docker compose, next to a backend in a container of its own.
#
# stdio backends run as child processes of gatehouse inside this container, so the commands they use must
# exist in the image. This image has none (no Node.js, no Python): run such servers in their own containers
# and reach them over HTTP, or extend the image (docs/deployment.md, "Node-based and Python-based servers").

# ---- build: compile a single binary for the platform this image is built on ----
FROM denoland/deno:2.9.6 AS build
WORKDIR /src
COPY deno.json deno.lock main.ts ./
COPY src/ ./src/
# Fetch the locked dependencies, which are the serving ones only (the tests pin theirs in tests/deno.lock);
# fail rather than update deno.lock.
RUN deno install --frozen
# Exactly the permission and V8 flags of `deno task start`; the password worker by name (it is loaded by
# a URL the compiler cannot follow). No --target: the build platform's binary.
# (deno compile downloads Deno's runtime for the binary, so this step needs the network.)
RUN deno compile --frozen --v8-flags=--max-semi-space-size=4 \
      --allow-net --allow-read --allow-write --allow-env --allow-run \
      --include src/login/password_worker.ts \
      --output /out/gatehouse main.ts

# ---- run ----
FROM debian:bookworm-slim
# ca-certificates: HTTPS to identity providers, third-party services and http backends.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 gatehouse \
 && useradd --uid 10001 --gid gatehouse --home-dir /home/gatehouse --create-home \
      --shell /usr/sbin/nologin gatehouse \
 && mkdir -p /config /data \
 && chown gatehouse:gatehouse /data \
 && chmod 0700 /data
COPY --from=build /out/gatehouse /usr/local/bin/gatehouse

USER 10001:10001
# A writable home for the caches of stdio backends (npx and the like) in extended images.
ENV HOME=/home/gatehouse
WORKDIR /config
# Created above with the right owner, so a new named volume starts owned by uid 10001 with mode 0700.
VOLUME /data
EXPOSE 8740

# There is no curl in this image; bash's /dev/tcp makes the HTTP request to /readyz instead.
# It assumes the default port: change it here, or use HEALTHCHECK NONE, if you change --listen.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8740 && printf 'GET /readyz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

ENTRYPOINT ["/usr/local/bin/gatehouse"]
CMD ["serve", "--registry", "/config/registry.yaml", "--data", "/data", "--listen", "0.0.0.0:8740"]
