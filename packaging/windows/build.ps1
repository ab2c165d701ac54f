<#
.SYNOPSIS
  Build Sealmail's Windows installer: PyInstaller bundle -> WiX MSI -> (optionally) signed.

.DESCRIPTION
  Run on Windows 10/11 x64 from the repository root, in PowerShell 7 or Windows PowerShell 5.1:

    powershell -ExecutionPolicy Bypass -File packaging\windows\build.ps1
    powershell -File packaging\windows\build.ps1 -CertThumbprint 0123ABCD... [-TimestampUrl URL]

  Needs: Python 3.11+ (python.org, x64) on PATH; the WiX Toolset v5+ .NET tool
  (dotnet tool install --global wix);
  for signing, signtool.exe from the Windows SDK and a code-signing certificate in the
  machine or user store (an EV/OV certificate or Azure Trusted Signing -- see README).

  Output: build\win\Sealmail-<version>-x64.msi
#>
param(
    [string]$CertThumbprint = $env:SEALMAIL_SIGN_THUMBPRINT,
    [string]$TimestampUrl = "http://timestamp.digicert.com"
)
$ErrorActionPreference = "Stop"
Set-StrictMode -Version Latest
$Root = (Resolve-Path "$PSScriptRoot\..\..").Path
Set-Location $Root

function Run([string]$exe, [string[]]$argv) {
    & $exe @argv
    if ($LASTEXITCODE -ne 0) { throw "$exe failed ($LASTEXITCODE)" }
}

# 1. a venv with the project and PyInstaller
if (-not (Test-Path .venv\Scripts\python.exe)) { Run python @("-m", "venv", ".venv") }
$Py = "$Root\.venv\Scripts\python.exe"
Run $Py @("-m", "pip", "install", "-q", "-e", ".", "pyinstaller>=6.10", "pillow")
$Version = & $Py -c "import tomllib;print(tomllib.load(open('pyproject.toml','rb'))['project']['version'])"

# 2. icon (PNG; PyInstaller turns it into the .exe's .ico with Pillow)
Run $Py @("packaging\common\render_icons.py", "build\icons", "16", "32", "48", "256")

# 3. freeze: build\win\dist\sealmail\{sealmail.exe, sealmail-gui.exe, _internal\}
Run $Py @("-m", "PyInstaller", "--noconfirm", "--distpath", "build\win\dist",
          "--workpath", "build\win\work", "packaging\windows\sealmail.spec")
$Bundle = "$Root\build\win\dist\sealmail"
Run "$Bundle\sealmail.exe" @("--version")

# 4. sign the executables before they go into the MSI (Windows checks both)
function Sign([string[]]$files) {
    if (-not $CertThumbprint) { Write-Warning "not signed (no -CertThumbprint)"; return }
    Run signtool.exe (@("sign", "/sha1", $CertThumbprint, "/fd", "SHA256",
                        "/tr", $TimestampUrl, "/td", "SHA256", "/d", "Sealmail") + $files)
}
Sign @("$Bundle\sealmail.exe", "$Bundle\sealmail-gui.exe")

# 5. the MSI
$Msi = "$Root\build\win\Sealmail-$Version-x64.msi"
Run wix @("build", "packaging\windows\sealmail.wxs", "-arch", "x64",
          "-d", "Version=$Version", "-d", "BundleDir=$Bundle", "-o", $Msi)
Sign @($Msi)
Write-Host "built $Msi"
Write-Host "silent install: msiexec /i `"$Msi`" /qn /l*v install.log [POLICYFILE=`"\\server\share\policy.json`"]"
