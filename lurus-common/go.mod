module github.com/lurus-switch/lurus-switch/lurus-common

go 1.26.8
