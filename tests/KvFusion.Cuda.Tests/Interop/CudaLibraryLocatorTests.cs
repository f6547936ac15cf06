using KvFusion.Cuda.Interop;
using KvFusion.Cuda.Tests.Support;

namespace KvFusion.Cuda.Tests.Interop;

/// <summary>Where the locator looks for the CUDA libraries, in which order, and what it says when nothing loads.</summary>
public sealed class CudaLibraryLocatorTests
{
    private const string Override = "/opt/custom-cuda/lib";
    private const string CudaLib64 = "/usr/local/cuda/lib64";
    private const string DistroLib = "/usr/lib/x86_64-linux-gnu";

    private static CudaLibraryLocator Locator(FakeLibraryProbe probe, string? overrideDirectory = null) => new(probe, overrideDirectory);

    [Fact]
    public void The_override_directory_is_searched_first()
    {
        var probe = new FakeLibraryProbe()
            .WithFile($"{CudaLib64}/libnvrtc.so.12")
            .WithFile($"{Override}/libnvrtc.so.12");

        var locator = Locator(probe, Override);
        var library = locator.Load(CudaLibraryKind.Nvrtc);

        Assert.Equal($"{Override}/libnvrtc.so.12", library.Path);
        Assert.Equal(Override, locator.SearchDirectories()[0]);
    }

    [Fact]
    public void Without_an_override_the_cuda_symlink_folder_comes_first()
    {
        var probe = new FakeLibraryProbe()
            .WithFile($"{DistroLib}/libnvrtc.so.12")
            .WithFile($"{CudaLib64}/libnvrtc.so.12");

        var library = Locator(probe).Load(CudaLibraryKind.Nvrtc);

        Assert.Equal($"{CudaLib64}/libnvrtc.so.12", library.Path);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public void A_blank_override_directory_is_ignored(string blank)
    {
        var directories = Locator(new FakeLibraryProbe(), blank).SearchDirectories();

        Assert.Equal(CudaLib64, directories[0]);
        Assert.DoesNotContain(directories, string.IsNullOrWhiteSpace);
    }

    [Fact]
    public void The_newest_soname_in_a_folder_is_preferred()
    {
        var probe = new FakeLibraryProbe()
            .WithFile($"{DistroLib}/libnvrtc.so")
            .WithFile($"{DistroLib}/libnvrtc.so.11.2")
            .WithFile($"{DistroLib}/libnvrtc.so.12")
            .WithFile($"{DistroLib}/libnvrtc.so.13");

        var library = Locator(probe).Load(CudaLibraryKind.Nvrtc);

        Assert.Equal($"{DistroLib}/libnvrtc.so.13", library.Path);
        Assert.Equal(CudaLibraryKind.Nvrtc, library.Kind);
        Assert.Equal(probe.HandleOf(library.Path), library.Handle);
    }

    [Fact]
    public void Cuda_12_is_preferred_over_cuda_11_when_13_is_absent()
    {
        var probe = new FakeLibraryProbe()
            .WithFile($"{DistroLib}/libnvrtc.so.11.2")
            .WithFile($"{DistroLib}/libnvrtc.so.12");

        Assert.Equal($"{DistroLib}/libnvrtc.so.12", Locator(probe).Load(CudaLibraryKind.Nvrtc).Path);
    }

    [Fact]
    public void An_earlier_folder_wins_over_a_newer_soname_in_a_later_folder()
    {
        var probe = new FakeLibraryProbe()
            .WithFile($"{Override}/libcublas.so.11")
            .WithFile($"{DistroLib}/libcublas.so.13");

        Assert.Equal($"{Override}/libcublas.so.11", Locator(probe, Override).Load(CudaLibraryKind.Cublas).Path);
    }

    [Theory]
    [InlineData(CudaLibraryKind.Driver, new[] { "libcuda.so.1", "libcuda.so" })]
    [InlineData(CudaLibraryKind.Nvrtc, new[] { "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so" })]
    [InlineData(CudaLibraryKind.Cublas, new[] { "libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so" })]
    public void File_names_list_the_newest_soname_first(CudaLibraryKind kind, string[] expected)
    {
        Assert.Equal(expected, CudaLibraryLocator.FileNames(kind));
    }

    [Fact]
    public void Versioned_toolkit_folders_are_searched_newest_version_first()
    {
        var probe = new FakeLibraryProbe()
            .WithDirectory("/usr/local/cuda-11.8")
            .WithDirectory("/usr/local/cuda-13.0")
            .WithDirectory("/usr/local/cuda-12.4")
            .WithDirectory("/usr/local/cuda-12")
            .WithDirectory("/usr/local/cuda-notes");

        var directories = Locator(probe).SearchDirectories().ToList();

        var cuda13 = directories.IndexOf("/usr/local/cuda-13.0/targets/x86_64-linux/lib");
        var cuda124 = directories.IndexOf("/usr/local/cuda-12.4/targets/x86_64-linux/lib");
        var cuda12 = directories.IndexOf("/usr/local/cuda-12/targets/x86_64-linux/lib");
        var cuda118 = directories.IndexOf("/usr/local/cuda-11.8/targets/x86_64-linux/lib");
        Assert.True(cuda13 >= 0 && cuda124 >= 0 && cuda12 >= 0 && cuda118 >= 0, string.Join(", ", directories));
        Assert.True(cuda13 < cuda124, string.Join(", ", directories));
        Assert.True(cuda124 < cuda12, string.Join(", ", directories));
        Assert.True(cuda12 < cuda118, string.Join(", ", directories));
        Assert.Contains("/usr/local/cuda-12.4/lib64", directories);
        Assert.True(directories.IndexOf(CudaLib64) < cuda13, "the /usr/local/cuda symlink comes before the versioned folders");
        Assert.True(cuda118 < directories.IndexOf(DistroLib), "the distribution's folder comes after the toolkit folders");
        Assert.DoesNotContain(directories, d => d.Contains("cuda-notes", StringComparison.Ordinal));
    }

    [Fact]
    public void The_newest_installed_toolkit_supplies_the_library()
    {
        var probe = new FakeLibraryProbe()
            .WithDirectory("/usr/local/cuda-11.8")
            .WithDirectory("/usr/local/cuda-12.4")
            .WithFile("/usr/local/cuda-11.8/targets/x86_64-linux/lib/libcublas.so.11")
            .WithFile("/usr/local/cuda-12.4/targets/x86_64-linux/lib/libcublas.so.12");

        Assert.Equal("/usr/local/cuda-12.4/targets/x86_64-linux/lib/libcublas.so.12", Locator(probe).Load(CudaLibraryKind.Cublas).Path);
    }

    [Fact]
    public void The_system_loader_is_the_fallback_when_no_folder_has_the_library()
    {
        var probe = new FakeLibraryProbe()
            .WithSystemName("libcuda.so")
            .WithSystemName("libcuda.so.1");

        var found = Locator(probe).TryLoad(CudaLibraryKind.Driver, out var library, out var error);

        Assert.True(found, error);
        Assert.Equal("libcuda.so.1", library.Path);
        Assert.Equal(probe.HandleOf("libcuda.so.1"), library.Handle);
        Assert.Equal(string.Empty, error);
    }

    [Fact]
    public void A_file_in_a_searched_folder_is_preferred_over_the_system_loader()
    {
        var probe = new FakeLibraryProbe()
            .WithSystemName("libcuda.so.1")
            .WithFile("/usr/lib/wsl/lib/libcuda.so.1");

        Assert.Equal("/usr/lib/wsl/lib/libcuda.so.1", Locator(probe).Load(CudaLibraryKind.Driver).Path);
    }

    [Theory]
    [InlineData(CudaLibraryKind.Driver, "libcuda.so.1")]
    [InlineData(CudaLibraryKind.Nvrtc, "libnvrtc.so.13")]
    [InlineData(CudaLibraryKind.Cublas, "libcublas.so.13")]
    public void When_nothing_loads_the_error_names_the_file_the_folders_and_the_variable(CudaLibraryKind kind, string file)
    {
        var probe = new FakeLibraryProbe();
        var locator = Locator(probe);

        var found = locator.TryLoad(kind, out var library, out var error);

        Assert.False(found);
        Assert.Equal(default, library);
        Assert.Contains(file, error, StringComparison.Ordinal);
        foreach (var dir in locator.SearchDirectories())
        {
            Assert.Contains(dir, error, StringComparison.Ordinal);
        }

        Assert.Contains(CudaLibraryLocator.DirectoryVariable, error, StringComparison.Ordinal);
        Assert.Equal("KVFUSION_CUDA_LIB_DIR", CudaLibraryLocator.DirectoryVariable);
        var thrown = Assert.Throws<CudaLibraryNotFoundException>(() => locator.Load(kind));
        Assert.Equal(error, thrown.Message);
    }

    [Fact]
    public void When_nothing_loads_every_file_name_is_tried_on_the_system_loader()
    {
        var probe = new FakeLibraryProbe();

        Assert.False(Locator(probe).TryLoad(CudaLibraryKind.Cublas, out _, out _));

        Assert.Equal(CudaLibraryLocator.FileNames(CudaLibraryKind.Cublas), probe.LoadAttempts);
    }

    [Fact]
    public void The_error_names_the_override_directory_when_one_is_set()
    {
        var locator = Locator(new FakeLibraryProbe(), Override);

        var error = Assert.Throws<CudaLibraryNotFoundException>(() => locator.Load(CudaLibraryKind.Nvrtc)).Message;

        Assert.Contains($"KVFUSION_CUDA_LIB_DIR={Override}", error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_file_that_exists_but_fails_to_load_is_reported_with_the_loader_error()
    {
        var probe = new FakeLibraryProbe()
            .WithBrokenFile($"{CudaLib64}/libcublas.so.12", "wrong ELF class: ELFCLASS32");

        var found = Locator(probe).TryLoad(CudaLibraryKind.Cublas, out _, out var error);

        Assert.False(found);
        Assert.Contains($"{CudaLib64}/libcublas.so.12: wrong ELF class: ELFCLASS32", error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_file_that_fails_to_load_is_skipped_for_the_next_candidate()
    {
        var probe = new FakeLibraryProbe()
            .WithBrokenFile($"{CudaLib64}/libnvrtc.so.13", "undefined symbol: __nvJitLinkCreate")
            .WithFile($"{CudaLib64}/libnvrtc.so.12");

        var found = Locator(probe).TryLoad(CudaLibraryKind.Nvrtc, out var library, out var error);

        Assert.True(found, error);
        Assert.Equal($"{CudaLib64}/libnvrtc.so.12", library.Path);
    }

    [Fact]
    public void Loading_nvrtc_preloads_the_newest_builtins_library_from_the_same_folder()
    {
        var probe = new FakeLibraryProbe()
            .WithFile($"{Override}/libnvrtc.so.12")
            .WithFile($"{Override}/libnvrtc-builtins.so.12.4")
            .WithFile($"{Override}/libnvrtc-builtins.so.12.8")
            .WithFile($"{DistroLib}/libnvrtc-builtins.so.12.9");

        Locator(probe, Override).Load(CudaLibraryKind.Nvrtc);

        Assert.Equal([$"{Override}/libnvrtc.so.12", $"{Override}/libnvrtc-builtins.so.12.8"], probe.Loaded);
    }

    [Fact]
    public void A_builtins_library_that_fails_to_load_falls_back_to_an_older_one()
    {
        var probe = new FakeLibraryProbe()
            .WithFile($"{Override}/libnvrtc.so.12")
            .WithFile($"{Override}/libnvrtc-builtins.so.12.4")
            .WithBrokenFile($"{Override}/libnvrtc-builtins.so.12.8", "file too short");

        var library = Locator(probe, Override).Load(CudaLibraryKind.Nvrtc);

        Assert.Equal($"{Override}/libnvrtc.so.12", library.Path);
        Assert.Equal([$"{Override}/libnvrtc.so.12", $"{Override}/libnvrtc-builtins.so.12.4"], probe.Loaded);
    }

    [Fact]
    public void Loading_cublas_preloads_the_lt_library_with_the_same_soname_suffix()
    {
        var probe = new FakeLibraryProbe()
            .WithFile($"{CudaLib64}/libcublas.so.12")
            .WithFile($"{CudaLib64}/libcublasLt.so.11")
            .WithFile($"{CudaLib64}/libcublasLt.so.12")
            .WithFile($"{CudaLib64}/libcublasLt.so.13");

        Locator(probe).Load(CudaLibraryKind.Cublas);

        Assert.Equal([$"{CudaLib64}/libcublas.so.12", $"{CudaLib64}/libcublasLt.so.12"], probe.Loaded);
    }

    [Fact]
    public void Loading_the_driver_preloads_nothing_else()
    {
        var probe = new FakeLibraryProbe()
            .WithFile($"{DistroLib}/libcuda.so.1")
            .WithFile($"{DistroLib}/libnvrtc-builtins.so.12.8")
            .WithFile($"{DistroLib}/libcublasLt.so.1");

        Locator(probe).Load(CudaLibraryKind.Driver);

        Assert.Equal([$"{DistroLib}/libcuda.so.1"], probe.LoadAttempts);
    }
}
