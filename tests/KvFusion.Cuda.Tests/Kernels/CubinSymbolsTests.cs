using System.Buffers.Binary;
using KvFusion.Cuda.Kernels;
using KvFusion.Cuda.Tests.Support;

namespace KvFusion.Cuda.Tests.Kernels;

/// <summary>Reading the function symbols of an ELF64 image, and rejecting what is not one.</summary>
public sealed class CubinSymbolsTests
{
    [Fact]
    public void The_function_symbols_of_an_image_are_listed_in_table_order()
    {
        var image = ElfImage.Build(
            ("embed_f32", ElfImage.SymbolTypeFunction),
            ("kvf_shared_table", ElfImage.SymbolTypeObject),
            ("rms_norm_f16", ElfImage.SymbolTypeFunction));

        Assert.Equal(["embed_f32", "rms_norm_f16"], CubinSymbols.Functions(image));
    }

    [Fact]
    public void An_image_without_functions_lists_none()
    {
        Assert.Empty(CubinSymbols.Functions(ElfImage.Build(("data", ElfImage.SymbolTypeObject))));
    }

    [Fact]
    public void Empty_input_is_rejected()
    {
        Assert.Throws<InvalidDataException>(() => CubinSymbols.Functions([]));
    }

    [Fact]
    public void Input_that_is_not_ELF_is_rejected()
    {
        var text = new byte[256];
        "KVFCUBIN this is not an ELF file"u8.CopyTo(text);

        Assert.Throws<InvalidDataException>(() => CubinSymbols.Functions(text));
    }

    [Theory]
    [InlineData(4, 1)] // ELFCLASS32
    [InlineData(5, 2)] // big-endian
    [InlineData(1, (byte)'e')]
    public void An_ELF_image_of_another_class_or_byte_order_is_rejected(int index, byte value)
    {
        var image = ElfImage.Build(("k", ElfImage.SymbolTypeFunction));
        image[index] = value;

        Assert.Throws<InvalidDataException>(() => CubinSymbols.Functions(image));
    }

    [Fact]
    public void An_image_shorter_than_the_ELF_header_is_rejected()
    {
        var image = ElfImage.Build(("k", ElfImage.SymbolTypeFunction));

        Assert.Throws<InvalidDataException>(() => CubinSymbols.Functions(image.AsSpan(0, 63)));
    }

    [Fact]
    public void A_truncated_image_is_rejected()
    {
        var image = ElfImage.Build(("k", ElfImage.SymbolTypeFunction));

        Assert.Throws<InvalidDataException>(() => CubinSymbols.Functions(image.AsSpan(0, image.Length - 1)));
        Assert.Throws<InvalidDataException>(() => CubinSymbols.Functions(image.AsSpan(0, image.Length / 2)));
    }

    [Fact]
    public void A_symbol_table_that_runs_past_the_end_is_rejected()
    {
        var image = ElfImage.Build(("k", ElfImage.SymbolTypeFunction));
        var symtab = ElfImage.SymbolTableHeaderOffset(image);
        BinaryPrimitives.WriteInt64LittleEndian(image.AsSpan(symtab + 0x20), image.Length);

        var e = Assert.Throws<InvalidDataException>(() => CubinSymbols.Functions(image));
        Assert.Contains("symbol table", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_symbol_table_linked_to_a_missing_section_is_rejected()
    {
        var image = ElfImage.Build(("k", ElfImage.SymbolTypeFunction));
        var symtab = ElfImage.SymbolTableHeaderOffset(image);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(symtab + 0x28), 7);

        Assert.Throws<InvalidDataException>(() => CubinSymbols.Functions(image));
    }

    [Fact]
    public void A_symbol_name_outside_the_string_table_is_rejected()
    {
        var image = ElfImage.Build(("k", ElfImage.SymbolTypeFunction));
        var symtab = ElfImage.SymbolTableHeaderOffset(image);
        var symbols = (int)BinaryPrimitives.ReadInt64LittleEndian(image.AsSpan(symtab + 0x18));
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(symbols + 24), 10_000);

        var e = Assert.Throws<InvalidDataException>(() => CubinSymbols.Functions(image));
        Assert.Contains("name", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void A_truncated_real_cubin_is_rejected()
    {
        Skip.If(NvrtcTestEnvironment.SkipReason is not null, NvrtcTestEnvironment.SkipReason);
        var cubin = NvrtcTestEnvironment.Cubin("norm", "sm_80");

        Assert.NotEmpty(CubinSymbols.Functions(cubin));
        Assert.Throws<InvalidDataException>(() => CubinSymbols.Functions(cubin.AsSpan(0, cubin.Length / 2)));
    }
}
