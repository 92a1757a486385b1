# syntax=docker/dockerfile:1
#
# A small static image of the gateway:
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t gateway .
#   docker run --rm -p 8080:8080 -v "$PWD/my-gateway.yaml:/etc/gateway/gateway.yaml:ro" gateway
#
# The config must listen on ":8080" (not 127.0.0.1) to be reachable from
# outside the container. Without a file, flags work too:
#
#   docker run --rm -p 8080:8080 --add-host=host.docker.internal:host-gateway gateway proxy --listen :8080 --to http://host.docker.internal:3000
#
# Multi-platform: docker buildx build --platform linux/amd64,linux/arm64 .
# (the builder runs natively and cross-compiles; nothing needs cgo).

# The builder runs on the build host's platform and cross-compiles for the
# target's, so a multi-platform build needs no emulation. Its Go must be at
# least go.mod's go line (the image sets GOTOOLCHAIN=local): if an old
# golang:1.26 is cached locally, build with --pull.
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
WORKDIR /src

# Modules first, so that editing the code does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
# VERSION is what `gateway version` prints (main.version); the Go
# version comes from the binary's build info. -buildvcs=false: .git is not
# in the build context (see .dockerignore), so put a revision in VERSION.
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/gateway .

# distroless/static: no shell or package manager, but the CA certificates
# (for https upstreams), /etc/passwd with the nonroot user, /tmp and tzdata
# that scratch would need copied in by hand; about 2 MB.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gateway /gateway
# nonroot (65532), numeric so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
# The data port: 8080 as in gateway.yaml and `gateway proxy` (a config may
# choose another). The admin listener stays on loopback unless the config
# says otherwise, so it is not exposed.
EXPOSE 8080
ENTRYPOINT ["/gateway"]
CMD ["run", "-config", "/etc/gateway/gateway.yaml"]
