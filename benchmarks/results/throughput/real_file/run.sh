cd /work/main && source .venv/bin/activate
mkdir -p /tmp/e2e && cd /tmp/e2e
for L in nchw channels-last; do
  nvc encode /work/shared/clips/bunny_640x320_132f.mkv -o bunny_$L.nvc --frames 0:48 --size 0.35M --epochs 2 --rd-epochs 1 --decode-layout $L -y --quiet > /dev/null 2>&1
done
ls -la *.nvc
for r in 1 2; do for L in nchw channels-last; do
  s=$(date +%s.%N); OMP_NUM_THREADS=2 nvc decode bunny_$L.nvc -o out_$L.y4m -y > /dev/null 2>&1; e=$(date +%s.%N)
  echo "$L round $r: $(python -c "print(f'{48/($e-$s):.1f} frames/s end to end ({$e-$s:.2f} s for 48 frames, process start included)')")"
done; done
python - <<'PY'
import numpy as np
from nvcodec.io import read_video
a,_=read_video('out_nchw.y4m'); b,_=read_video('out_channels-last.y4m')
print('y planes differ (different weights: separate encodes)', int((a.y!=b.y).sum()))
PY
