# syntax=docker/dockerfile:1
# weft-proxy, the sidecar, with weft-await (the postStart wait the injector adds when native sidecars are off). It runs as UID 2102, the UID weft-init exempts from the redirect.
# Build from the repository root:
#   docker build -f deploy/docker/weft-proxy.Dockerfile -t ghcr.io/weft-mesh/weft-proxy:0.1.0 .
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
    cargo build --release --locked --target "$TARGET" -p weft-proxy --bin weft-proxy -p weft-injector-await --bin weft-await \
 && mkdir /out \
 && for bin in weft-proxy weft-await; do cp "target/$TARGET/release/$bin" /out/; done

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER 2102:2102
ENTRYPOINT ["/usr/local/bin/weft-proxy"]
