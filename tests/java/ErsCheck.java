// An independent RFC 4998 checker for custody's tests, on Bouncy Castle's
// org.bouncycastle.tsp.ers (Debian libbcpkix-java 1.72). Compiled by the tests with javac
// into a temporary folder; never shipped.
//
//   verify ROOTS.pem RECORD.ers DATA [DATA...]    several DATA = one data object group
//     ERSEvidenceRecord parses the record and checks every timestamp renewal inside each
//     chain (RFC 4998 section 5.3 step 2, ERSEvidenceRecord.validateChains);
//     validatePresent checks the data object against the current chain's first archive
//     timestamp, with the hash of the earlier chains (section 5.3 steps 1 and 3);
//     every archive timestamp's token is then checked on its own: signature, ESS binding,
//     certificate valid at genTime, critical timeStamping EKU (TimeStampToken.validate),
//     and a PKIX path to ROOTS at genTime (java.security.cert); finally
//     ERSEvidenceRecord.validate checks the last token and that it covers the chain.
//     Prints "OK" (exit 0) or "FAIL: reason" (exit 1).
//   create TSA-URL ALG OUTDIR DATA [DATA...]       one record per data object, one request
//   renew-ts TSA-URL IN.ers OUT.ers                 BC's timestamp renewal
//   renew-hash TSA-URL ALG IN.ers OUT.ers DATA      BC's hash-tree renewal
//   root ALG DATA [DATA...]                         hex root BC computes over the data

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.math.BigInteger;
import java.net.HttpURLConnection;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.Security;
import java.security.cert.CertPathBuilder;
import java.security.cert.CertStore;
import java.security.cert.CertificateFactory;
import java.security.cert.CollectionCertStoreParameters;
import java.security.cert.PKIXBuilderParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509CertSelector;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Date;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import org.bouncycastle.asn1.nist.NISTObjectIdentifiers;
import org.bouncycastle.asn1.tsp.ArchiveTimeStamp;
import org.bouncycastle.asn1.tsp.ArchiveTimeStampChain;
import org.bouncycastle.asn1.x509.AlgorithmIdentifier;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cms.SignerInformationVerifier;
import org.bouncycastle.cms.jcajce.JcaSimpleSignerInfoVerifierBuilder;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.operator.DigestCalculator;
import org.bouncycastle.operator.DigestCalculatorProvider;
import org.bouncycastle.operator.jcajce.JcaDigestCalculatorProviderBuilder;
import org.bouncycastle.tsp.TimeStampRequest;
import org.bouncycastle.tsp.TimeStampRequestGenerator;
import org.bouncycastle.tsp.TimeStampResponse;
import org.bouncycastle.tsp.TimeStampToken;
import org.bouncycastle.tsp.ers.ERSArchiveTimeStamp;
import org.bouncycastle.tsp.ers.ERSArchiveTimeStampGenerator;
import org.bouncycastle.tsp.ers.ERSByteData;
import org.bouncycastle.tsp.ers.ERSData;
import org.bouncycastle.tsp.ers.ERSDataGroup;
import org.bouncycastle.tsp.ers.ERSEvidenceRecord;
import org.bouncycastle.tsp.ers.ERSEvidenceRecordGenerator;
import org.bouncycastle.util.Store;
import org.bouncycastle.util.encoders.Hex;

public class ErsCheck
{
    static final Date FAR_FUTURE = new Date(4102444800000L * 2); // validatePresent: genTime <= this

    public static void main(String[] args) throws Exception
    {
        Security.addProvider(new BouncyCastleProvider());
        try
        {
            switch (args[0])
            {
            case "verify": verify(args); break;
            case "create": create(args); break;
            case "renew-ts": renewTs(args); break;
            case "renew-hash": renewHash(args); break;
            case "root": root(args); break;
            default: throw new IllegalArgumentException("unknown command " + args[0]);
            }
        }
        catch (Exception e)
        {
            String msg = e.getMessage();
            Throwable cause = e.getCause();
            if (cause != null && cause.getMessage() != null)
            {
                msg = msg + " / " + cause.getMessage();
            }
            System.out.println("FAIL: " + e.getClass().getSimpleName() + ": " + msg);
            System.exit(1);
        }
    }

    static DigestCalculatorProvider digests() throws Exception
    {
        return new JcaDigestCalculatorProviderBuilder().setProvider("BC").build();
    }

    static AlgorithmIdentifier alg(String name)
    {
        switch (name)
        {
        case "sha256": return new AlgorithmIdentifier(NISTObjectIdentifiers.id_sha256);
        case "sha384": return new AlgorithmIdentifier(NISTObjectIdentifiers.id_sha384);
        case "sha512": return new AlgorithmIdentifier(NISTObjectIdentifiers.id_sha512);
        default: throw new IllegalArgumentException("unknown algorithm " + name);
        }
    }

    static ERSData data(String[] args, int from)
        throws Exception
    {
        if (args.length - from == 1)
        {
            return new ERSByteData(Files.readAllBytes(Paths.get(args[from])));
        }
        List<ERSData> members = new ArrayList<ERSData>();
        for (int i = from; i < args.length; i++)
        {
            members.add(new ERSByteData(Files.readAllBytes(Paths.get(args[i]))));
        }
        return new ERSDataGroup(members);
    }

    static void verify(String[] args) throws Exception
    {
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        Set<TrustAnchor> anchors = new HashSet<TrustAnchor>();
        try (InputStream in = Files.newInputStream(Paths.get(args[1])))
        {
            for (java.security.cert.Certificate c : cf.generateCertificates(in))
            {
                anchors.add(new TrustAnchor((X509Certificate)c, null));
            }
        }
        byte[] encoded = Files.readAllBytes(Paths.get(args[2]));
        ERSData data = data(args, 3);
        DigestCalculatorProvider digests = digests();

        ERSEvidenceRecord er = new ERSEvidenceRecord(encoded, digests);
        er.validatePresent(data, FAR_FUTURE);

        ArchiveTimeStampChain[] chains = er.toASN1Structure().getArchiveTimeStampSequence().getArchiveTimeStampChains();
        for (int k = 0; k != chains.length; k++)
        {
            ArchiveTimeStamp[] atss = chains[k].getArchiveTimestamps();
            for (int j = 0; j != atss.length; j++)
            {
                ERSArchiveTimeStamp ats = new ERSArchiveTimeStamp(atss[j], digests);
                X509CertificateHolder signer = ats.getSigningCertificate();
                if (signer == null)
                {
                    throw new IllegalStateException("chain " + k + " timestamp " + j + ": no signer certificate");
                }
                ats.validate(verifier(signer));
                checkPath(ats.getTimeStampToken(), signer, anchors, "chain " + k + " timestamp " + j);
            }
        }
        er.validate(verifier(er.getSigningCertificate()));
        System.out.println("OK");
    }

    static SignerInformationVerifier verifier(X509CertificateHolder cert) throws Exception
    {
        return new JcaSimpleSignerInfoVerifierBuilder().setProvider("BC").build(cert);
    }

    static void checkPath(TimeStampToken token, X509CertificateHolder signer, Set<TrustAnchor> anchors, String where)
        throws Exception
    {
        JcaX509CertificateConverter conv = new JcaX509CertificateConverter().setProvider("BC");
        List<X509Certificate> certs = new ArrayList<X509Certificate>();
        Store<X509CertificateHolder> store = token.getCertificates();
        for (Object o : store.getMatches(null))
        {
            certs.add(conv.getCertificate((X509CertificateHolder)o));
        }
        X509CertSelector target = new X509CertSelector();
        target.setCertificate(conv.getCertificate(signer));
        PKIXBuilderParameters params = new PKIXBuilderParameters(anchors, target);
        params.addCertStore(CertStore.getInstance("Collection", new CollectionCertStoreParameters(certs)));
        params.setRevocationEnabled(false);
        params.setDate(token.getTimeStampInfo().getGenTime());
        try
        {
            CertPathBuilder.getInstance("PKIX").build(params);
        }
        catch (Exception e)
        {
            throw new IllegalStateException(where + ": no PKIX path at genTime: " + e.getMessage(), e);
        }
    }

    static byte[] post(String url, byte[] body) throws Exception
    {
        HttpURLConnection c = (HttpURLConnection)new URL(url).openConnection(java.net.Proxy.NO_PROXY);
        c.setConnectTimeout(20000);
        c.setReadTimeout(60000);
        c.setDoOutput(true);
        c.setRequestMethod("POST");
        c.setRequestProperty("Content-Type", "application/timestamp-query");
        try (OutputStream out = c.getOutputStream())
        {
            out.write(body);
        }
        if (c.getResponseCode() != 200)
        {
            throw new IllegalStateException("TSA answered HTTP " + c.getResponseCode());
        }
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try (InputStream in = c.getInputStream())
        {
            in.transferTo(buf);
        }
        return buf.toByteArray();
    }

    static TimeStampResponse stamp(String url, TimeStampRequest req) throws Exception
    {
        TimeStampResponse resp = new TimeStampResponse(post(url, req.getEncoded()));
        resp.validate(req);
        return resp;
    }

    static TimeStampRequestGenerator requests()
    {
        TimeStampRequestGenerator gen = new TimeStampRequestGenerator();
        gen.setCertReq(true);
        return gen;
    }

    static void create(String[] args) throws Exception
    {
        DigestCalculatorProvider digests = digests();
        DigestCalculator calc = digests.get(alg(args[2]));
        ERSArchiveTimeStampGenerator gen = new ERSArchiveTimeStampGenerator(calc);
        for (int i = 4; i < args.length; i++)
        {
            gen.addData(new ERSByteData(Files.readAllBytes(Paths.get(args[i]))));
        }
        TimeStampRequest req = gen.generateTimeStampRequest(requests(), new BigInteger(63, new java.security.SecureRandom()));
        List<ERSArchiveTimeStamp> atss = gen.generateArchiveTimeStamps(stamp(args[1], req));
        List<ERSEvidenceRecord> records = new ERSEvidenceRecordGenerator(digests).generate(atss);
        for (int i = 0; i != records.size(); i++)
        {
            Files.write(Paths.get(args[3], i + ".ers"), records.get(i).getEncoded());
        }
        System.out.println("OK " + Hex.toHexString(req.getMessageImprintDigest()));
    }

    static void renewTs(String[] args) throws Exception
    {
        DigestCalculatorProvider digests = digests();
        ERSEvidenceRecord er = new ERSEvidenceRecord(Files.readAllBytes(Paths.get(args[2])), digests);
        TimeStampRequest req = er.generateTimeStampRenewalRequest(requests(), new BigInteger(63, new java.security.SecureRandom()));
        ERSEvidenceRecord renewed = er.renewTimeStamp(stamp(args[1], req));
        Files.write(Paths.get(args[3]), renewed.getEncoded());
        System.out.println("OK");
    }

    static void renewHash(String[] args) throws Exception
    {
        DigestCalculatorProvider digests = digests();
        ERSEvidenceRecord er = new ERSEvidenceRecord(Files.readAllBytes(Paths.get(args[3])), digests);
        DigestCalculator calc = digests.get(alg(args[2]));
        ERSData data = data(args, 5);
        TimeStampRequest req = er.generateHashRenewalRequest(calc, data, requests(), new BigInteger(63, new java.security.SecureRandom()));
        ERSEvidenceRecord renewed = er.renewHash(calc, data, stamp(args[1], req));
        Files.write(Paths.get(args[4]), renewed.getEncoded());
        System.out.println("OK");
    }

    static void root(String[] args) throws Exception
    {
        DigestCalculator calc = digests().get(alg(args[1]));
        ERSArchiveTimeStampGenerator gen = new ERSArchiveTimeStampGenerator(calc);
        for (int i = 2; i < args.length; i++)
        {
            gen.addData(new ERSByteData(Files.readAllBytes(Paths.get(args[i]))));
        }
        TimeStampRequest req = gen.generateTimeStampRequest(requests());
        System.out.println("OK " + Hex.toHexString(req.getMessageImprintDigest()));
    }
}
