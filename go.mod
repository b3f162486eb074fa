module github.com/resgo/resgo

go 1.26
