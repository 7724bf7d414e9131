module caravanserai.example/benchfloor

go 1.22
