# finproxy: a static binary on a distroless base, running as a numeric
# non-root user (65532, distroless's nonroot), so runAsNonRoot can verify it.
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t finproxy .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# The same build command as make build (and a test in make test).
RUN ./scripts/build.sh /out/finproxy "${VERSION}"

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/finproxy /finproxy
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/finproxy"]
