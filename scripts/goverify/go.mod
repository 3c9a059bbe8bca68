module trellis.local/goverify

go 1.19
