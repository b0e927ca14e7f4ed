module timeprobe

go 1.25
