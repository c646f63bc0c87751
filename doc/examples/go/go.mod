module github.com/lurus-switch/lurus-switch/doc/examples/go

go 1.26.8

require github.com/gorilla/websocket v1.5.3
