"Integration and bad-input tests of `selfscale.data` on image folders made on the spot (nothing is downloaded)."
import os, struct, subprocess, sys, textwrap, warnings, zlib
import cv2, numpy as np, pytest, torch
import fastcore.test as fct
import selfscale.data as sd
from selfscale.data import load_data, read_gray, register_task


def smooth(h, w, seed=0, channels=None):
    "A smooth random uint8 image (h,w[,channels]), so that the targets have some structure."
    small = np.random.default_rng(seed).random((max(h // 16, 2), max(w // 16, 2), channels or 1))
    img = cv2.resize((small * 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    return img if channels else img.reshape(h, w)


def make_folder(path, n=5, size=80, ext='png'):
    "A folder of `n` readable images."
    path.mkdir(parents=True, exist_ok=True)
    for i in range(n): cv2.imwrite(str(path / f'img{i}.{ext}'), smooth(size, size, seed=i))
    return path


def huge_png(path, w, h):
    "A PNG whose header says `w`×`h` pixels but that holds the pixels of a 1×1 image: a few bytes, never decodable."
    png = bytearray(cv2.imencode('.png', np.zeros((1, 1), np.uint8))[1])
    png[16:24] = struct.pack('>II', w, h)
    png[29:33] = struct.pack('>I', zlib.crc32(png[12:29]))  # the IHDR chunk's checksum
    path.write_bytes(png)


def crop_of(ds, name):
    "The stored input crop of the image called `name`, whichever side of the split it fell on."
    part = next(p for p, names in ds.names.items() if name in names)
    return ds.images(part)[0][ds.names[part].index(name)].float().numpy()


def load(data_dir, **kw):
    "`load_data` with small defaults."
    return load_data(kw.pop('task', 'sobel'), data_dir, **{'crop': 64, 'n_eval': 1, **kw})


def test_unreadable_files_skipped_counted_and_named(tmp_path):
    make_folder(tmp_path, 3)
    jpg = tmp_path / 'broken.jpg'
    cv2.imwrite(str(jpg), smooth(100, 100))
    jpg.write_bytes(jpg.read_bytes()[:jpg.stat().st_size // 2])
    (tmp_path / 'empty.png').write_bytes(b'')
    (tmp_path / 'notes.png').write_text('this is not an image')
    with pytest.warns(UserWarning) as rec:
        ds = load(tmp_path)
    fct.test_eq(len(rec), 1)
    msg = str(rec[0].message)
    assert msg.startswith('skipped 3 unreadable image file(s)'), msg
    for name in ('broken.jpg', 'empty.png', 'notes.png'): assert name in msg
    fct.test_eq(sorted(p.rsplit('/', 1)[-1] for p, _ in ds.skipped), ['broken.jpg', 'empty.png', 'notes.png'])
    fct.test_eq(dict((p.rsplit('/', 1)[-1], r) for p, r in ds.skipped)['empty.png'], 'empty file')
    fct.test_eq(len(ds), 3)


def test_warning_lists_only_the_first_few(tmp_path):
    make_folder(tmp_path, 3)
    for i in range(5): (tmp_path / f'bad{i}.jpg').write_text('x')
    with pytest.warns(UserWarning, match=r'skipped 5 .*bad0\.jpg, bad1\.jpg, bad2\.jpg, \.\.\.'):
        fct.test_eq(len(load(tmp_path).skipped), 5)


def test_image_smaller_than_crop_is_reflect_padded(tmp_path):
    img = smooth(40, 50)
    cv2.imwrite(str(tmp_path / 'small.png'), img)
    make_folder(tmp_path / 'more', 2)
    expected = np.pad(img / 255, ((12, 12), (7, 7)), mode='reflect')
    fct.test_close(crop_of(load(tmp_path), 'small.png'), expected, eps=1e-3)


def test_16bit_png_keeps_its_precision(tmp_path):
    img = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    cv2.imwrite(str(tmp_path / 'deep.png'), img)
    fct.test_close(read_gray(tmp_path / 'deep.png'), img / 65535, eps=1e-6)
    make_folder(tmp_path / 'more', 2)
    steps = np.diff(np.unique(crop_of(load(tmp_path), 'deep.png')))
    assert steps.min() < 1 / 255 / 4, 'more than 256 levels survive'


def test_rgba_and_rgb_become_gray(tmp_path):
    bgra = smooth(64, 64, channels=4)
    cv2.imwrite(str(tmp_path / 'a.png'), bgra)
    cv2.imwrite(str(tmp_path / 'b.bmp'), bgra[..., :3])
    gray = cv2.cvtColor(bgra[..., :3].astype(np.float32) / 255, cv2.COLOR_BGR2GRAY)
    for f in ('a.png', 'b.bmp'): fct.test_close(read_gray(tmp_path / f), gray, eps=1e-6)
    make_folder(tmp_path / 'more', 1)
    fct.test_eq(load(tmp_path).skipped, [])


def test_big_image_is_centre_cropped(tmp_path):
    img = smooth(6000, 6000)
    cv2.imwrite(str(tmp_path / 'big.png'), img)
    make_folder(tmp_path / 'small', 2)
    fct.test_close(crop_of(load(tmp_path, crop=128), 'big.png'), img[2936:3064, 2936:3064] / 255, eps=1e-3)


def test_huge_image_is_not_held_in_memory(tmp_path):
    "An 8000×8000 photo (under MAX_PIXELS) costs its decode (64 MB) and a crop, never a float copy (256 MB)."
    cv2.imwrite(str(tmp_path / 'huge.jpg'), smooth(8000, 8000))
    make_folder(tmp_path / 'small', 2)
    code = textwrap.dedent(f'''
        import resource, selfscale.data as sd
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        ds = sd.load_data('sobel', {str(tmp_path)!r}, crop=256, n_eval=1)
        print(len(ds), (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)''')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    n, grew_mb = map(int, out.split())
    fct.test_eq(n, 3)
    assert grew_mb < 200, f'peak memory grew by {grew_mb} MB'  # ~66 measured; a float copy of the whole adds 256


def test_image_over_max_pixels_is_skipped_before_decoding(tmp_path):
    "A 25000×25000 header is refused by its size (decoding would fail otherwise), the other images are used."
    make_folder(tmp_path, 3)
    huge_png(tmp_path / 'huge.png', 25000, 25000)
    with pytest.warns(UserWarning, match='skipped 1 unreadable image file.*: huge.png'):
        ds = load(tmp_path)
    fct.test_eq(len(ds), 3)
    fct.test_eq([(p.rsplit('/', 1)[-1], r) for p, r in ds.skipped],
                [('huge.png', f'too large to decode: 25000×25000 = 625,000,000 pixels, '
                              f'over the limit of {sd.MAX_PIXELS:,} (max_pixels)')])


def test_max_pixels_is_the_limit(tmp_path):
    make_folder(tmp_path, 3, size=80)
    cv2.imwrite(str(tmp_path / 'wide.png'), smooth(80, 81))
    fct.test_eq(load(tmp_path, max_pixels=80 * 81).skipped, [])
    with pytest.warns(UserWarning, match='skipped 1'):
        skipped = load(tmp_path, max_pixels=80 * 80).skipped
    fct.test_eq(skipped, [(str(tmp_path / 'wide.png'),
                           'too large to decode: 81×80 = 6,480 pixels, over the limit of 6,400 (max_pixels)')])
    with pytest.raises(ValueError, match='max_pixels must be a positive integer, got 0'): load(tmp_path, max_pixels=0)


def test_symlinked_subfolder_is_followed_once(tmp_path):
    data, outside = make_folder(tmp_path / 'data' / 'real', 2).parent, make_folder(tmp_path / 'outside', 2)
    os.symlink(outside, data / 'linked')
    os.symlink(data, data / 'real' / 'loop')        # a loop back to data_dir
    os.symlink(data / 'real', data / 'same')        # a second path to a folder already walked
    names = sorted(sum(load(data).names.values(), []))
    fct.test_eq(names, ['linked/img0.png', 'linked/img1.png', 'real/img0.png', 'real/img1.png'])


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=f'data_dir not found: {tmp_path / "nope"}'): load(tmp_path / 'nope')


def test_file_instead_of_folder(tmp_path):
    cv2.imwrite(str(tmp_path / 'a.png'), smooth(64, 64))
    with pytest.raises(ValueError, match='data_dir must be a folder of images'): load(tmp_path / 'a.png')


def test_empty_folder_and_folder_without_images(tmp_path):
    with pytest.raises(ValueError, match=f'no image files .* in data_dir {tmp_path}$'): load(tmp_path)
    (tmp_path / 'readme.txt').write_text('hello')
    (tmp_path / 'sub').mkdir()
    with pytest.raises(ValueError, match='no image files'): load(tmp_path)


def test_only_unreadable_images(tmp_path):
    (tmp_path / 'a.png').write_bytes(b'')
    (tmp_path / 'b.jpg').write_text('not a jpeg')
    unreadable = f'none of the 2 image files in {tmp_path} could be read'
    with warnings.catch_warnings(record=True), pytest.raises(ValueError, match=unreadable):
        load(tmp_path)


def test_nested_folders_and_extension_case(tmp_path):
    make_folder(tmp_path / 'a' / 'b', 2)
    cv2.imwrite(str(tmp_path / 'top.JPG'), smooth(64, 64))
    cv2.imwrite(str(tmp_path / 'a' / 'mid.TIFF'), smooth(64, 64))
    make_folder(tmp_path / '.cache', 2)
    ds = load(tmp_path)
    fct.test_eq(sorted(sum(ds.names.values(), [])), ['a/b/img0.png', 'a/b/img1.png', 'a/mid.TIFF', 'top.JPG'])


def test_n_eval_must_leave_training_images(tmp_path):
    make_folder(tmp_path, 3)
    with pytest.raises(ValueError, match=r'n_eval \(2\) held out twice \(val and test\) '
                                         r'must leave training images: .* has 3'):
        load(tmp_path, n_eval=2)
    with pytest.raises(ValueError, match='n_eval must be at least 1'): load(tmp_path, n_eval=0)
    fct.test_eq(load(tmp_path, n_eval=1).n_train, 1)


def test_split_is_by_file_name_and_survives_new_images(tmp_path):
    make_folder(tmp_path, 8)
    a = load(tmp_path, n_eval=2)
    fct.test_eq(sorted(sum(a.names.values(), [])), [f'img{i}.png' for i in range(8)])
    fct.test_eq(len(set(a.names['train']) | set(a.names['val']) | set(a.names['test'])), 8)   # disjoint parts
    cv2.imwrite(str(tmp_path / 'zz_new.png'), smooth(64, 64, seed=20))
    b = load(tmp_path, n_eval=2)
    moved = [n for p in ('val', 'test') for n in a.names[p] if n not in b.names[p]]
    assert len(moved) <= 1, moved          # ranked by hash: a new file can displace at most one held-out name


def test_batches_same_seed_same_patches(tmp_path):
    ds = load(make_folder(tmp_path, 4), crop=64)
    x1, y1 = ds.batch(torch.Generator().manual_seed(5), 8, 32)
    x2, y2 = ds.batch(torch.Generator().manual_seed(5), 8, 32)
    fct.test_eq((x1.shape, y1.dtype), ((8, 1, 32, 32), torch.float32))
    fct.test_eq((x1, y1), (x2, y2))
    with pytest.raises(ValueError, match='patch must be between 1 and crop'): ds.batch(torch.Generator(), 8, 65)


def test_repeated_load_does_not_decode_again(tmp_path, monkeypatch):
    make_folder(tmp_path, 4)
    first = load(tmp_path)
    monkeypatch.setattr(sd, '_decode', lambda p, *_: pytest.fail(f'decoded {p} again'))
    fct.test_is(load(tmp_path).data, first.data)


def test_memmap_cache_is_reused_by_a_new_process(tmp_path, monkeypatch):
    make_folder(tmp_path / 'imgs', 4)
    first = load(tmp_path / 'imgs', cache_dir=tmp_path / 'cache')
    fct.test_eq(len(list((tmp_path / 'cache').glob('*.f16'))), 1)
    sd._prepare.cache_clear()  # what a new process sees
    monkeypatch.setattr(sd, '_decode', lambda p, *_: pytest.fail(f'decoded {p} again'))
    again = load(tmp_path / 'imgs', cache_dir=tmp_path / 'cache')
    fct.test_eq(again.data, first.data)
    fct.test_eq(again.names, first.names)


def test_cache_notices_a_changed_file(tmp_path):
    make_folder(tmp_path / 'imgs', 3)
    load(tmp_path / 'imgs', cache_dir=tmp_path / 'cache')
    cv2.imwrite(str(tmp_path / 'imgs' / 'img0.png'), smooth(80, 80, seed=9))
    load(tmp_path / 'imgs', cache_dir=tmp_path / 'cache')
    fct.test_eq(len(list((tmp_path / 'cache').glob('*.f16'))), 2)


def test_large_set_is_memory_mapped(tmp_path, monkeypatch):
    make_folder(tmp_path / 'imgs', 5)
    in_ram = load(tmp_path / 'imgs')
    monkeypatch.setattr(sd, 'MEMORY_LIMIT', 1)
    monkeypatch.setattr(sd, 'CACHE_DIR', tmp_path / 'cache')
    (tmp_path / 'imgs' / 'bad.png').write_text('x')
    with pytest.warns(UserWarning, match='skipped 1'):
        mapped = load(tmp_path / 'imgs')
    assert mapped.on_disk and not in_ram.on_disk
    fct.test_eq(len(list((tmp_path / 'cache').glob('*.f16'))), 1)
    fct.test_eq(mapped.data, in_ram.data)
    fct.test_eq(mapped.batch(torch.Generator().manual_seed(0), 4, 16),
                in_ram.batch(torch.Generator().manual_seed(0), 4, 16))
    fct.test_eq(mapped.eval_batch(), in_ram.eval_batch())


def test_registered_task_and_bad_task(tmp_path):
    make_folder(tmp_path, 3)
    try:
        register_task('invert', lambda im: 1 - im)
        ds = load(tmp_path, task='invert')
        fct.test_close(ds.train_x.float() + ds.train_y.float(), torch.ones_like(ds.train_x.float()), eps=1e-3)
        register_task('broken', lambda im: im[:10])
        with pytest.raises(ValueError, match="task 'broken' returned shape"): load(tmp_path, task='broken')
    finally:
        for name in ('invert', 'broken'): sd.TASKS.pop(name, None)
    with pytest.raises(ValueError, match="unknown task 'invert'; known: canny, sobel, threshold"):
        load(tmp_path, task='invert')


def test_binary_targets(tmp_path):
    make_folder(tmp_path, 3)
    for task in ('canny', 'threshold'):
        ds = load(tmp_path, task=task)
        assert ds.binary
        fct.test_eq(set(ds.train_y.unique().tolist()) <= {0.0, 1.0}, True)
