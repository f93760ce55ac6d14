module reloader.local/tools/node/pause

go 1.26.0
