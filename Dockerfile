# finproxy: a static binary on a distroless base, running as non-root.
#   docker build -t finproxy .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/finproxy/finproxy/metrics.version=${VERSION}" \
      -o /out/finproxy .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/finproxy /finproxy
USER nonroot:nonroot
EXPOSE 8080 9090
ENTRYPOINT ["/finproxy"]
