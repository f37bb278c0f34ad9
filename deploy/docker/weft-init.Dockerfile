# syntax=docker/dockerfile:1
# weft-init, the init container that redirects the pod's TCP to the proxy.
# Build from the repository root:
#   docker build -f deploy/docker/weft-init.Dockerfile -t ghcr.io/weft-mesh/weft-init:0.1.0 .
# The binary is static (musl), so the image holds nothing else.
FROM rust:1.95-bookworm AS build
ARG TARGET=x86_64-unknown-linux-musl
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add "$TARGET"
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target "$TARGET" -p weft-init --bin weft-init \
 && mkdir /out \
 && for bin in weft-init ; do cp "target/$TARGET/release/$bin" /out/; done

# weft-init programs iptables in the pod's network namespace: it needs the iptables tools
# (nft and legacy) and runs as root with NET_ADMIN and NET_RAW only, before any app container,
# and exits. It is the one image that is neither distroless nor non-root; CNI mode
# (weft install --cni) does without it.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
USER 0:0
ENTRYPOINT ["/usr/local/bin/weft-init"]
