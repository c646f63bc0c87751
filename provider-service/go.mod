module github.com/lurus-switch/lurus-switch/provider-service

go 1.26.8

require github.com/lurus-switch/lurus-switch/lurus-common v0.0.0

replace github.com/lurus-switch/lurus-switch/lurus-common => ../lurus-common
